// ERP payloads in, plain JSON values out: JSON as is, XML by documented rules (see README, "XML payloads").
import { XMLParser, XMLValidator } from "fast-xml-parser";

export type PayloadFormat = "json" | "xml";

/** Deepest nesting accepted in a payload: XML elements, or JSON arrays and objects. IDocs nest about 10. */
export const MAX_PAYLOAD_DEPTH = 100;

export class PayloadError extends Error {
  constructor(
    message: string,
    readonly details: { format: PayloadFormat; line?: number; column?: number; limit?: string; value?: number },
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
 * DOCTYPE declarations are refused, so only XML's five predefined entities are ever expanded.
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

function lineAndColumn(text: string, index: number): { line: number; column: number } {
  const before = text.slice(0, index);
  const line = before.split("\n").length;
  return { line, column: index - before.lastIndexOf("\n") };
}

function tooDeep(format: PayloadFormat, where: { line?: number; column?: number } = {}): PayloadError {
  return new PayloadError(`Payload is nested more than ${MAX_PAYLOAD_DEPTH} levels deep (limit max_payload_depth = ${MAX_PAYLOAD_DEPTH})`, {
    format,
    ...where,
    limit: "max_payload_depth",
    value: MAX_PAYLOAD_DEPTH,
  });
}

/**
 * Refuses a DOCTYPE (entity expansion, external entities) and nesting past MAX_PAYLOAD_DEPTH before
 * the parser sees the text: the parser recurses per level and expands entities it is given. Reads
 * only markup boundaries; malformed text is left for the validator to describe.
 */
function checkXmlShape(text: string): void {
  const doctype = text.search(/<!DOCTYPE/i);
  if (doctype !== -1) {
    throw new PayloadError("XML payloads must not contain a DOCTYPE declaration (no DTDs, entity declarations or external references)", {
      format: "xml",
      ...lineAndColumn(text, doctype),
    });
  }
  let depth = 0;
  for (let i = text.indexOf("<"); i !== -1; i = text.indexOf("<", i + 1)) {
    const next = text[i + 1];
    if (next === "?") i = text.indexOf("?>", i + 2);
    else if (text.startsWith("<!--", i)) i = text.indexOf("-->", i + 4);
    else if (text.startsWith("<![CDATA[", i)) i = text.indexOf("]]>", i + 9);
    else if (next === "!") i = text.indexOf(">", i + 2);
    else if (next === "/") depth--;
    else {
      let end = i + 1;
      let quote = "";
      for (; end < text.length; end++) {
        const ch = text[end];
        if (quote) {
          if (ch === quote) quote = "";
        } else if (ch === '"' || ch === "'") quote = ch;
        else if (ch === ">") break;
      }
      if (end >= text.length) return;
      if (text[end - 1] !== "/" && ++depth > MAX_PAYLOAD_DEPTH) throw tooDeep("xml", lineAndColumn(text, i));
      i = end;
    }
    if (i === -1) return;
  }
}

export function parseXml(text: string): unknown {
  checkXmlShape(text);
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new PayloadError(`Payload is not well-formed XML: ${valid.err.msg}`, { format: "xml", line: valid.err.line, column: valid.err.col });
  }
  try {
    return xml.parse(text);
  } catch (err) {
    // fast-xml-parser still refuses some documents the validator passed (and may overflow its stack).
    throw new PayloadError(`Payload could not be parsed as XML: ${err instanceof Error ? err.message : String(err)}`, { format: "xml" });
  }
}

/** Nesting depth of JSON text, counted over brackets outside strings, without parsing it. */
function checkJsonTextDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++;
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > MAX_PAYLOAD_DEPTH) throw tooDeep("json", lineAndColumn(text, i));
    } else if (ch === 0x5d || ch === 0x7d) depth--;
  }
}

/** Nesting depth of an already-parsed value (a payload sent as JSON rather than as a string), iteratively. */
function checkValueDepth(value: unknown): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth + 1 > MAX_PAYLOAD_DEPTH) throw tooDeep("json");
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
}

/** A payload as received (a string, or already-parsed JSON) as the value mappings run against. */
export function parsePayload(format: PayloadFormat, payload: unknown): unknown {
  if (format === "xml") {
    if (typeof payload !== "string") throw new PayloadError("An xml payload must be a string", { format });
    return parseXml(payload);
  }
  if (typeof payload !== "string") {
    checkValueDepth(payload);
    return payload;
  }
  checkJsonTextDepth(payload);
  try {
    return JSON.parse(payload);
  } catch (err) {
    throw new PayloadError(`Payload is not valid JSON: ${(err as Error).message}`, { format });
  }
}
