// ERP payloads in, plain JSON values out: JSON as is, XML by documented rules (see README, "XML payloads").
import { XMLParser, XMLValidator } from "fast-xml-parser";

export type PayloadFormat = "json" | "xml";

export class PayloadError extends Error {
  constructor(
    message: string,
    readonly details: { format: PayloadFormat; line?: number; column?: number },
  ) {
    super(message);
    this.name = "PayloadError";
  }
}

/**
 * XML rules: the root element is the top-level key; attributes become `@name` keys; an element with
 * attributes and text keeps its text under `#text`; repeated sibling elements become arrays (a single
 * one stays an object, which JSONata paths treat alike); values stay strings (IDoc numbers such as
 * "0000012345" keep their leading zeros); namespace prefixes are kept; the XML declaration is dropped.
 */
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  textNodeName: "#text",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: false,
});

export function parseXml(text: string): unknown {
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new PayloadError(`Payload is not well-formed XML: ${valid.err.msg}`, { format: "xml", line: valid.err.line, column: valid.err.col });
  }
  return xml.parse(text);
}

/** A payload as received (a string, or already-parsed JSON) as the value mappings run against. */
export function parsePayload(format: PayloadFormat, payload: unknown): unknown {
  if (format === "xml") {
    if (typeof payload !== "string") throw new PayloadError("An xml payload must be a string", { format });
    return parseXml(payload);
  }
  if (typeof payload !== "string") return payload;
  try {
    return JSON.parse(payload);
  } catch (err) {
    throw new PayloadError(`Payload is not valid JSON: ${(err as Error).message}`, { format });
  }
}
