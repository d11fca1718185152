// A fake SAP S/4HANA OData service on loopback for the SAP blueprint's tests and README walkthrough
// (blueprints/sap-s4hana, issue #14): API_BUSINESS_PARTNER's A_BusinessPartner in OData v2 JSON, with
// the $filter, $orderby, $top, $skip and $expand that a delta pull uses.
//   GET  /sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner?$filter=…&$orderby=…&$top=…&$expand=…&$format=json
//        Basic auth (user "ERPEDGE_COMM", password "s3cret") -> { d: { results: [ A_BusinessPartner, … ] } }
//        $filter: eq ne gt ge lt le, and, or, not, parentheses; literals datetime'…', time'PT…H…M…S', '…', numbers, true/false/null
//        $expand: to_BusinessPartnerAddress, to_BusinessPartnerAddress/to_EmailAddress (…/to_PhoneNumber, …/to_MobilePhoneNumber),
//                 to_BusinessPartnerTax; navigation properties not expanded are { __deferred: { uri } }, as SAP answers
//   GET  /sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner('1000234')?$expand=…&$format=json -> { d: A_BusinessPartner }
//   POST /_partners   { BusinessPartner, …A_BusinessPartner fields, address?: { StreetName, HouseNumber, PostalCode, CityName,
//                     Country, EmailAddress, PhoneNumber, MobilePhoneNumber }, tax_number?, changed_at? } -> the partner, created
//                     or changed (unknown fields refused), LastChangeDate/LastChangeTime set to changed_at or now
//   GET  /_requests   every A_BusinessPartner query so far: [{ filter, orderby, top, skip, returned: ["1000234", …] }]
// Four partners exist at start (German utility customers, persons and an organisation), changed on different days in November 2026.
import { createServer } from "node:http";

export const SERVICE_PATH = "/sap/opu/odata/sap/API_BUSINESS_PARTNER";
export const USER = "ERPEDGE_COMM";
export const PASSWORD = "s3cret";

/** The partners the service starts with. Dates and times are UTC, as S/4HANA Cloud keeps them. */
export function initialPartners() {
  return [
    {
      BusinessPartner: "1000234", BusinessPartnerCategory: "1", BusinessPartnerGrouping: "BP02", FormOfAddress: "0001",
      FirstName: "Anna", LastName: "Schmidt", SearchTerm1: "SCHMIDT", CorrespondenceLanguage: "DE",
      CreationDate: "2019-04-01", CreationTime: "10:12:00", CreatedByUser: "MIGRATION", changed_at: "2026-11-02T08:15:00Z",
      addresses: [{ AddressID: "29371", StreetName: "Torstraße", HouseNumber: "12", PostalCode: "10119", CityName: "Berlin", Region: "BE", Country: "DE",
        emails: ["anna.schmidt@example.org"], phones: ["030 1234567"], mobiles: [] }],
      taxes: [],
    },
    {
      BusinessPartner: "1000235", BusinessPartnerCategory: "2", BusinessPartnerGrouping: "BP03", FormOfAddress: "0003",
      OrganizationBPName1: "Bäckerei Müller", OrganizationBPName2: "GmbH", LegalForm: "GMBH", SearchTerm1: "MUELLER", CorrespondenceLanguage: "DE",
      CreationDate: "2021-06-15", CreationTime: "14:03:27", CreatedByUser: "CPIC_BP", changed_at: "2026-11-10T13:02:44Z",
      addresses: [{ AddressID: "31877", StreetName: "Karl-Liebknecht-Straße", HouseNumber: "5", PostalCode: "04107", CityName: "Leipzig", Region: "SN", Country: "DE",
        emails: ["info@baeckerei-mueller.example"], phones: ["0341 9876543"], mobiles: [] }],
      taxes: [{ BPTaxType: "DE0", BPTaxNumber: "DE811234567" }],
    },
    {
      BusinessPartner: "1000236", BusinessPartnerCategory: "1", BusinessPartnerGrouping: "BP02", FormOfAddress: "0002", AcademicTitle: "0001",
      FirstName: "Jürgen", LastName: "Weiß", SearchTerm1: "WEISS", CorrespondenceLanguage: "DE", BirthDate: "1961-08-23",
      CreationDate: "2020-01-20", CreationTime: "09:30:00", CreatedByUser: "CPIC_BP", changed_at: "2026-11-18T16:45:10Z",
      addresses: [{ AddressID: "30112", StreetName: "Königsallee", HouseNumber: "27", PostalCode: "40212", CityName: "Düsseldorf", Region: "NW", Country: "DE",
        emails: ["j.weiss@example.net"], phones: [], mobiles: ["+49 171 2345678"] }],
      taxes: [],
    },
    {
      BusinessPartner: "1000237", BusinessPartnerCategory: "1", BusinessPartnerGrouping: "BP02", FormOfAddress: "0001",
      FirstName: "Özlem", LastName: "Yılmaz", SearchTerm1: "YILMAZ", CorrespondenceLanguage: "DE",
      CreationDate: "2023-09-04", CreationTime: "11:47:51", CreatedByUser: "CPIC_BP", changed_at: "2026-11-25T09:00:00Z",
      addresses: [{ AddressID: "33420", StreetName: "Schanzenstraße", HouseNumber: "3", PostalCode: "20357", CityName: "Hamburg", Region: "HH", Country: "DE",
        emails: ["oezlem.yilmaz@example.com"], phones: ["040 4321987"], mobiles: [] }],
      taxes: [],
    },
  ];
}

// ---- OData v2 JSON -------------------------------------------------------------------------------

const odataDate = (isoDate) => (isoDate ? `/Date(${Date.parse(`${isoDate}T00:00:00Z`)})/` : null);
const odataTime = (hms) => {
  const [h, m, s] = hms.split(":");
  return `PT${h}H${m}M${s}S`;
};
const splitChange = (iso) => ({ date: iso.slice(0, 10), time: iso.slice(11, 19) });

/** One partner as API_BUSINESS_PARTNER answers it, navigation properties expanded as `expand` says. */
function partnerEntity(p, base, expand) {
  const key = `A_BusinessPartner('${p.BusinessPartner}')`;
  const uri = `${base}${SERVICE_PATH}/${key}`;
  const changed = splitChange(p.changed_at);
  const deferred = (nav) => ({ __deferred: { uri: `${uri}/${nav}` } });
  const person = p.BusinessPartnerCategory === "1";
  const entity = {
    __metadata: { id: uri, uri, type: "API_BUSINESS_PARTNER.A_BusinessPartnerType", etag: `W/"datetimeoffset'${p.changed_at.replace("Z", "")}'"` },
    BusinessPartner: p.BusinessPartner,
    Customer: p.Customer ?? p.BusinessPartner,
    Supplier: "",
    AcademicTitle: p.AcademicTitle ?? "",
    AuthorizationGroup: "",
    BusinessPartnerCategory: p.BusinessPartnerCategory,
    BusinessPartnerFullName: person ? `${p.FirstName} ${p.LastName}` : [p.OrganizationBPName1, p.OrganizationBPName2].filter(Boolean).join(" "),
    BusinessPartnerGrouping: p.BusinessPartnerGrouping ?? "BP02",
    BusinessPartnerName: person ? `${p.FirstName} ${p.LastName}` : p.OrganizationBPName1,
    BusinessPartnerUUID: p.uuid,
    CorrespondenceLanguage: p.CorrespondenceLanguage ?? "DE",
    CreatedByUser: p.CreatedByUser ?? "CPIC_BP",
    CreationDate: odataDate(p.CreationDate),
    CreationTime: odataTime(p.CreationTime ?? "00:00:00"),
    FirstName: p.FirstName ?? "",
    FormOfAddress: p.FormOfAddress ?? "",
    Industry: "",
    IsFemale: person && p.FormOfAddress === "0001",
    IsMale: person && p.FormOfAddress === "0002",
    IsNaturalPerson: person ? "X" : "",
    IsSexUnknown: !person || !["0001", "0002"].includes(p.FormOfAddress),
    Language: "",
    LastChangeDate: odataDate(changed.date),
    LastChangeTime: odataTime(changed.time),
    LastChangedByUser: p.LastChangedByUser ?? "CPIC_BP",
    LastName: p.LastName ?? "",
    LegalForm: p.LegalForm ?? "",
    OrganizationBPName1: p.OrganizationBPName1 ?? "",
    OrganizationBPName2: p.OrganizationBPName2 ?? "",
    OrganizationBPName3: "",
    OrganizationBPName4: "",
    OrganizationFoundationDate: null,
    OrganizationLiquidationDate: null,
    SearchTerm1: p.SearchTerm1 ?? "",
    SearchTerm2: "",
    AdditionalLastName: "",
    BirthDate: odataDate(p.BirthDate),
    BusinessPartnerIsBlocked: p.BusinessPartnerIsBlocked ?? false,
    BusinessPartnerType: "",
    IsMarkedForArchiving: p.IsMarkedForArchiving ?? false,
    NameCountry: "",
    NameFormat: "",
    PersonNumber: "",
    to_BusinessPartnerAddress: deferred("to_BusinessPartnerAddress"),
    to_BusinessPartnerTax: deferred("to_BusinessPartnerTax"),
  };
  if (expand.has("to_BusinessPartnerTax")) {
    entity.to_BusinessPartnerTax = {
      results: p.taxes.map((t) => {
        const taxUri = `${base}${SERVICE_PATH}/A_BusinessPartnerTaxNumber(BusinessPartner='${p.BusinessPartner}',BPTaxType='${t.BPTaxType}')`;
        return { __metadata: { id: taxUri, uri: taxUri, type: "API_BUSINESS_PARTNER.A_BusinessPartnerTaxNumberType" }, BusinessPartner: p.BusinessPartner, BPTaxType: t.BPTaxType, BPTaxNumber: t.BPTaxNumber, BPTaxLongNumber: "" };
      }),
    };
  }
  if (expand.has("to_BusinessPartnerAddress")) {
    entity.to_BusinessPartnerAddress = {
      results: p.addresses.map((a) => {
        const addressKey = `A_BusinessPartnerAddress(BusinessPartner='${p.BusinessPartner}',AddressID='${a.AddressID}')`;
        const addressUri = `${base}${SERVICE_PATH}/${addressKey}`;
        const communication = (nav, entitySet, type, values, fields) => {
          if (!expand.has(`to_BusinessPartnerAddress/${nav}`)) return { __deferred: { uri: `${addressUri}/${nav}` } };
          return {
            results: values.map((value, i) => {
              const itemUri = `${base}${SERVICE_PATH}/${entitySet}(AddressID='${a.AddressID}',Person='',OrdinalNumber='${i + 1}')`;
              return { __metadata: { id: itemUri, uri: itemUri, type: `API_BUSINESS_PARTNER.${type}` }, AddressID: a.AddressID, Person: "", OrdinalNumber: String(i + 1), ...fields(value, i) };
            }),
          };
        };
        const phone = (number, i) => ({ DestinationLocationCountry: a.Country, IsDefaultPhoneNumber: i === 0, PhoneNumber: number, PhoneNumberExtension: "", InternationalPhoneNumber: "", PhoneNumberType: "1" });
        return {
          __metadata: { id: addressUri, uri: addressUri, type: "API_BUSINESS_PARTNER.A_BusinessPartnerAddressType" },
          BusinessPartner: p.BusinessPartner,
          AddressID: a.AddressID,
          ValidityStartDate: `/Date(${Date.parse(`${p.CreationDate}T00:00:00Z`)}+0000)/`,
          ValidityEndDate: "/Date(253402214400000+0000)/",
          AuthorizationGroup: "",
          CareOfName: "",
          CityName: a.CityName,
          Country: a.Country,
          District: "",
          FullName: "",
          HouseNumber: a.HouseNumber,
          HouseNumberSupplementText: "",
          Language: "DE",
          POBox: "",
          PostalCode: a.PostalCode,
          Region: a.Region ?? "",
          StreetName: a.StreetName,
          TaxJurisdiction: "",
          TransportZone: "",
          to_EmailAddress: communication("to_EmailAddress", "A_AddressEmailAddress", "A_AddressEmailAddressType", a.emails, (email, i) => ({ IsDefaultEmailAddress: i === 0, EmailAddress: email, SearchEmailAddress: email.slice(0, 20).toUpperCase(), AddressCommunicationRemarkText: "" })),
          to_PhoneNumber: communication("to_PhoneNumber", "A_AddressPhoneNumber", "A_AddressPhoneNumberType", a.phones, phone),
          to_MobilePhoneNumber: communication("to_MobilePhoneNumber", "A_AddressPhoneNumber", "A_AddressPhoneNumberType", a.mobiles, (number, i) => ({ ...phone(number, i), PhoneNumberType: "3" })),
        };
      }),
    };
  }
  return entity;
}

// ---- $filter: a small OData v2 expression evaluator ---------------------------------------------

class ODataError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function tokenize(text) {
  const tokens = [];
  const pattern = /\s*(?:(\()|(\))|(datetime|time)'([^']*)'|'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)(?![\w.])|([A-Za-z_][A-Za-z0-9_]*))/y;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    pattern.lastIndex = at;
    const m = pattern.exec(text);
    if (!m) throw new ODataError(400, `Invalid $filter at position ${at}: '${text.slice(at, at + 20)}'`);
    at = pattern.lastIndex;
    if (m[1]) tokens.push({ kind: "(" });
    else if (m[2]) tokens.push({ kind: ")" });
    else if (m[3] === "datetime") {
      const ms = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(m[4]) ? m[4] : `${m[4]}Z`);
      if (Number.isNaN(ms)) throw new ODataError(400, `Invalid datetime literal '${m[4]}'`);
      tokens.push({ kind: "value", value: { type: "datetime", ms } });
    } else if (m[3] === "time") {
      const t = /^PT(\d{1,2})H(\d{1,2})M(\d{1,2})S$/.exec(m[4]);
      if (!t) throw new ODataError(400, `Invalid time literal '${m[4]}'`);
      tokens.push({ kind: "value", value: { type: "time", seconds: Number(t[1]) * 3600 + Number(t[2]) * 60 + Number(t[3]) } });
    } else if (m[5] !== undefined) tokens.push({ kind: "value", value: { type: "string", text: m[5].replaceAll("''", "'") } });
    else if (m[6] !== undefined) tokens.push({ kind: "value", value: { type: "number", number: Number(m[6]) } });
    else tokens.push({ kind: "word", word: m[7] });
  }
  return tokens;
}

const COMPARISONS = new Set(["eq", "ne", "gt", "ge", "lt", "le"]);

/** Parses a $filter into a predicate over a partner's OData values (by property name). */
function parseFilter(text) {
  const tokens = tokenize(text);
  let i = 0;
  const peekWord = (w) => tokens[i]?.kind === "word" && tokens[i].word === w;
  const operand = () => {
    const t = tokens[i++];
    if (!t) throw new ODataError(400, "Invalid $filter: unexpected end");
    if (t.kind === "value") return () => t.value;
    if (t.kind === "word" && ["true", "false"].includes(t.word)) return () => ({ type: "boolean", value: t.word === "true" });
    if (t.kind === "word" && t.word === "null") return () => ({ type: "null" });
    if (t.kind === "word") {
      if (!PROPERTIES.has(t.word)) throw new ODataError(400, `Property ${t.word} not found in type 'API_BUSINESS_PARTNER.A_BusinessPartnerType'`);
      return (values) => values[t.word];
    }
    throw new ODataError(400, "Invalid $filter: expected a property or a literal");
  };
  const primary = () => {
    if (tokens[i]?.kind === "(") {
      i++;
      const inner = or();
      if (tokens[i++]?.kind !== ")") throw new ODataError(400, "Invalid $filter: missing ')'");
      return inner;
    }
    if (peekWord("not")) {
      i++;
      const inner = primary();
      return (v) => !inner(v);
    }
    const left = operand();
    const op = tokens[i++];
    if (op?.kind !== "word" || !COMPARISONS.has(op.word)) throw new ODataError(400, "Invalid $filter: expected eq, ne, gt, ge, lt or le");
    const right = operand();
    return (v) => compare(left(v), right(v), op.word);
  };
  const and = () => {
    let left = primary();
    while (peekWord("and")) {
      i++;
      const l = left;
      const r = primary();
      left = (v) => l(v) && r(v);
    }
    return left;
  };
  const or = () => {
    let left = and();
    while (peekWord("or")) {
      i++;
      const l = left;
      const r = and();
      left = (v) => l(v) || r(v);
    }
    return left;
  };
  const predicate = or();
  if (i !== tokens.length) throw new ODataError(400, "Invalid $filter: unexpected text after the expression");
  return predicate;
}

/** Orders two typed values; strings of digits (SAP's ALPHA keys) compare as numbers. */
function order(a, b) {
  if (a.type === "null" || b.type === "null") return a.type === b.type ? 0 : NaN;
  const scalar = (v) => (v.type === "datetime" ? v.ms : v.type === "time" ? v.seconds : v.type === "number" ? v.number : v.type === "boolean" ? Number(v.value) : v.text);
  const [x, y] = [scalar(a), scalar(b)];
  if (a.type === "string" && b.type === "string" && /^\d+$/.test(x) && /^\d+$/.test(y)) {
    const [p, q] = [BigInt(x), BigInt(y)];
    return p < q ? -1 : p > q ? 1 : 0;
  }
  if (typeof x !== typeof y) throw new ODataError(400, `Incompatible types in $filter: ${a.type} and ${b.type}`);
  return x < y ? -1 : x > y ? 1 : 0;
}

function compare(a, b, op) {
  const c = order(a, b);
  if (Number.isNaN(c)) return op === "ne";
  return { eq: c === 0, ne: c !== 0, gt: c > 0, ge: c >= 0, lt: c < 0, le: c <= 0 }[op];
}

/** A partner's filterable properties as typed values. */
function typedValues(p) {
  const changed = splitChange(p.changed_at);
  const [h, m, s] = changed.time.split(":").map(Number);
  const str = (text) => ({ type: "string", text: text ?? "" });
  const date = (iso) => (iso ? { type: "datetime", ms: Date.parse(`${iso}T00:00:00Z`) } : { type: "null" });
  return {
    BusinessPartner: str(p.BusinessPartner),
    Customer: str(p.Customer ?? p.BusinessPartner),
    BusinessPartnerCategory: str(p.BusinessPartnerCategory),
    BusinessPartnerGrouping: str(p.BusinessPartnerGrouping),
    FirstName: str(p.FirstName),
    LastName: str(p.LastName),
    OrganizationBPName1: str(p.OrganizationBPName1),
    SearchTerm1: str(p.SearchTerm1),
    CreationDate: date(p.CreationDate),
    BirthDate: date(p.BirthDate),
    LastChangeDate: date(changed.date),
    LastChangeTime: { type: "time", seconds: h * 3600 + m * 60 + s },
    BusinessPartnerIsBlocked: { type: "boolean", value: p.BusinessPartnerIsBlocked ?? false },
  };
}
const PROPERTIES = new Set(Object.keys(typedValues({ BusinessPartner: "1", changed_at: "2026-01-01T00:00:00Z" })));

// ---- the server ----------------------------------------------------------------------------------

const EDITABLE = new Set([
  "BusinessPartner", "BusinessPartnerCategory", "BusinessPartnerGrouping", "FormOfAddress", "AcademicTitle", "FirstName", "LastName",
  "OrganizationBPName1", "OrganizationBPName2", "LegalForm", "SearchTerm1", "CorrespondenceLanguage", "BirthDate", "BusinessPartnerIsBlocked",
  "IsMarkedForArchiving", "address", "tax_number", "changed_at",
]);
const ADDRESS_FIELDS = new Set(["StreetName", "HouseNumber", "PostalCode", "CityName", "Region", "Country", "EmailAddress", "PhoneNumber", "MobilePhoneNumber"]);

/** Creates or changes a partner from a POST /_partners body; throws an ODataError for a body it cannot take. */
function upsertPartner(partners, body, now) {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new ODataError(400, "expected a JSON object");
  const unknown = Object.keys(body).filter((k) => !EDITABLE.has(k));
  if (unknown.length) throw new ODataError(400, `unknown fields: ${unknown.join(", ")} (allowed: ${[...EDITABLE].join(", ")})`);
  if (typeof body.BusinessPartner !== "string" || !/^\d{1,10}$/.test(body.BusinessPartner)) throw new ODataError(400, "BusinessPartner: 1 to 10 digits");
  if (body.address !== undefined && Object.keys(body.address).some((k) => !ADDRESS_FIELDS.has(k))) throw new ODataError(400, `address: only ${[...ADDRESS_FIELDS].join(", ")}`);
  const changedAt = body.changed_at ?? new Date(now).toISOString().slice(0, 19) + "Z";
  if (Number.isNaN(Date.parse(changedAt))) throw new ODataError(400, "changed_at: an ISO 8601 date-time");
  let partner = partners.get(body.BusinessPartner);
  if (!partner) {
    partner = {
      BusinessPartner: body.BusinessPartner, BusinessPartnerCategory: "1", CreationDate: changedAt.slice(0, 10), CreationTime: changedAt.slice(11, 19),
      uuid: crypto.randomUUID(), addresses: [{ AddressID: String(40000 + partners.size), StreetName: "", HouseNumber: "", PostalCode: "", CityName: "", Country: "DE", emails: [], phones: [], mobiles: [] }], taxes: [],
    };
    partners.set(partner.BusinessPartner, partner);
  }
  const { address, tax_number, changed_at: _, ...fields } = body;
  Object.assign(partner, fields, { changed_at: new Date(Date.parse(changedAt)).toISOString().slice(0, 19) + "Z" });
  if (address) {
    const a = partner.addresses[0];
    const { EmailAddress, PhoneNumber, MobilePhoneNumber, ...rest } = address;
    Object.assign(a, rest);
    if (EmailAddress !== undefined) a.emails = EmailAddress ? [EmailAddress] : [];
    if (PhoneNumber !== undefined) a.phones = PhoneNumber ? [PhoneNumber] : [];
    if (MobilePhoneNumber !== undefined) a.mobiles = MobilePhoneNumber ? [MobilePhoneNumber] : [];
  }
  if (tax_number !== undefined) partner.taxes = tax_number ? [{ BPTaxType: "DE0", BPTaxNumber: tax_number }] : [];
  return partner;
}

/** Applies $orderby ("LastChangeDate,LastChangeTime desc,BusinessPartner") to typed rows. */
function sortBy(rows, orderby) {
  if (!orderby) return rows;
  const keys = orderby.split(",").map((part) => {
    const [name, direction = "asc"] = part.trim().split(/\s+/);
    if (!PROPERTIES.has(name)) throw new ODataError(400, `Property ${name} not found in type 'API_BUSINESS_PARTNER.A_BusinessPartnerType'`);
    if (!["asc", "desc"].includes(direction)) throw new ODataError(400, `Invalid $orderby direction '${direction}'`);
    return { name, sign: direction === "desc" ? -1 : 1 };
  });
  return [...rows].sort((a, b) => {
    for (const { name, sign } of keys) {
      const c = order(a.values[name], b.values[name]);
      if (c) return c * sign;
    }
    return 0;
  });
}

export function startFakeSap({ port = 0, partners: seed = initialPartners(), clock = () => Date.now() } = {}) {
  const partners = new Map(seed.map((p) => [p.BusinessPartner, { uuid: crypto.randomUUID(), ...structuredClone(p) }]));
  const requests = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url, "http://sap");
      const base = `http://${req.headers.host ?? "127.0.0.1"}`;
      const send = (status, body, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
        res.end(JSON.stringify(body));
      };
      const odataError = (status, message) => send(status, { error: { code: status === 401 ? "/IWFND/CM_CONSUMER/401" : "SY/530", message: { lang: "en", value: message } } });
      try {
        if (url.pathname === "/_requests" && req.method === "GET") return send(200, requests);
        if (url.pathname === "/_partners" && req.method === "POST") {
          let body;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            throw new ODataError(400, "the body is not JSON");
          }
          const partner = upsertPartner(partners, body, clock());
          return send(200, { d: partnerEntity(partner, base, new Set(["to_BusinessPartnerAddress", "to_BusinessPartnerAddress/to_EmailAddress", "to_BusinessPartnerAddress/to_PhoneNumber", "to_BusinessPartnerAddress/to_MobilePhoneNumber", "to_BusinessPartnerTax"])) });
        }
        const collection = `${SERVICE_PATH}/A_BusinessPartner`;
        if (!url.pathname.startsWith(collection) || req.method !== "GET") return odataError(404, `Resource not found for segment '${url.pathname}'`);
        const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "");
        const [user, password] = basic ? Buffer.from(basic[1], "base64").toString("utf8").split(":") : [];
        if (user !== USER || password !== PASSWORD) {
          res.writeHead(401, { "www-authenticate": 'Basic realm="SAP NetWeaver Application Server [S4H/100]"', "content-type": "text/plain" });
          return res.end("Logon failed");
        }
        if (url.searchParams.get("$format") !== "json" && !(req.headers.accept ?? "").includes("application/json")) {
          return odataError(406, "This fake answers JSON only: add $format=json or Accept: application/json");
        }
        const expand = new Set((url.searchParams.get("$expand") ?? "").split(",").map((s) => s.trim()).filter(Boolean));
        for (const nav of expand) if (nav.includes("/")) expand.add(nav.split("/")[0]);
        const single = /^\('(\d{1,10})'\)$/.exec(url.pathname.slice(collection.length));
        if (single) {
          const partner = partners.get(single[1]);
          if (!partner) return odataError(404, `Resource not found for segment 'A_BusinessPartner('${single[1]}')'`);
          return send(200, { d: partnerEntity(partner, base, expand) });
        }
        if (url.pathname !== collection) return odataError(404, `Resource not found for segment '${url.pathname}'`);
        const filterText = url.searchParams.get("$filter");
        const predicate = filterText ? parseFilter(filterText) : () => true;
        const number = (name, fallback) => {
          const raw = url.searchParams.get(name);
          if (raw === null) return fallback;
          if (!/^\d{1,6}$/.test(raw)) throw new ODataError(400, `Invalid ${name} '${raw}'`);
          return Number(raw);
        };
        const top = number("$top", 1000);
        const skip = number("$skip", 0);
        const rows = sortBy([...partners.values()].map((p) => ({ p, values: typedValues(p) })), url.searchParams.get("$orderby")).filter((r) => predicate(r.values));
        const page = rows.slice(skip, skip + top).map((r) => r.p);
        requests.push({ filter: filterText, orderby: url.searchParams.get("$orderby"), top, skip, returned: page.map((p) => p.BusinessPartner) });
        return send(200, { d: { results: page.map((p) => partnerEntity(p, base, expand)) } });
      } catch (err) {
        if (err instanceof ODataError) return odataError(err.status, err.message);
        return odataError(500, `fake SAP failed: ${err?.message ?? err}`);
      }
    });
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ server, port: server.address().port, partners })));
}

// Run as a script (not when a test bundles this module into its own file).
if (import.meta.url === `file://${process.argv[1]}` && process.argv[1].endsWith("/fake-sap.mjs")) {
  const { port } = await startFakeSap({ port: Number(process.argv[2] ?? 9200) });
  console.log(`fake SAP OData on http://127.0.0.1:${port}${SERVICE_PATH} (user "${USER}", password "${PASSWORD}"), ${initialPartners().length} business partners`);
}
