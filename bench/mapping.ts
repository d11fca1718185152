// Mapping benchmark (run by bench/run.mjs, bundled with esbuild, in one Node process): evaluations/s
// of two mappings through our engine, against three baselines, all in the same process with
// alternating short rounds:
// - CustomerChanged: the published epilot example (EXAMPLES_DIR), a business customer;
// - SapBusinessPartner: an S/4HANA A_BusinessPartner as API_BUSINESS_PARTNER returns it (OData v2,
//   `results` arrays, /Date()/ values) mapped to contacts, an account and billing accounts with 64
//   JSONata expressions (bench/fixtures), timed on the organisation.
// Figures: `ours` (runMapping, the default: compiled to closures), `interpreted` (runMapping with
// compile: false: JSONata's interpreter with our per-node meter), `jsonata_js` (the jsonata package
// itself, unbounded: every text compiled once with plain jsonata() and evaluated over the inputs the
// engine gives it, attributes built minimally) and `hand_written` (TypeScript producing the same
// MappingResult). Every output is checked equal before timing; any difference throws.
import { deepStrictEqual } from "node:assert";
import { readFileSync } from "node:fs";
import jsonata from "jsonata";
import { runMapping, type MappingContext, type MappingResult } from "../src/mapping/engine";
import { InboundConfiguration, expressionsOf, type FieldMapping, type UniqueIdSource } from "../src/mapping/schema";

const examples = process.env.EXAMPLES_DIR!;
const fixtures = process.env.FIXTURES_DIR ?? "bench/fixtures";
const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8"));

type P = Record<string, any>;
type Updates = MappingResult["entity_updates"];
const defined = (o: P) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const relation = (op: string, refs: P[]) => (refs.length ? { $relation: { [op]: refs } } : undefined);
const result = (entity_updates: Updates): MappingResult => ({ entity_updates, meter_readings_updates: [], warnings: [] });

// ---- CustomerChanged, written by hand ---------------------------------------------------------

const present = (v: unknown) => v !== undefined && v !== null && v !== "";
const emails = (p: P) => (present(p.email) ? [{ _tags: ["Primary"], email: p.email }] : undefined);
const phones = (p: P) => {
  const all = [...(present(p.phone) ? [{ _tags: ["Primary"], phone: p.phone }] : []), ...(present(p.mobile) ? [{ _tags: ["Mobile"], phone: p.mobile }] : [])];
  return all.length ? all : undefined;
};
const address = (tag: string, a: P) => ({ _tags: [tag], street: a.street, ...(a.postalCode !== undefined && { postal_code: String(a.postalCode) }), city: a.city, country: a.country });
const addresses = (p: P) => {
  const all = [...(p.address ? [address("Primary Address", p.address)] : []), ...(p.billingAddress && p.billingAddress.street !== "" ? [address("Billing Address", p.billingAddress)] : [])];
  return all.length ? all : undefined;
};
const payment = (p: P) =>
  p.defaultPayment && present(p.defaultPayment.iban)
    ? [{ type: "payment_sepa", data: { iban: p.defaultPayment.iban, ...(p.defaultPayment.bic !== undefined && { bic_number: p.defaultPayment.bic }), fullname: p.companyName } }]
    : undefined;
const setRelation = (schema: string, attribute: string, value: unknown) => ({ $relation: { _set: [{ $entity_unique_ids: { [attribute]: value }, _schema: schema }] } });

export function handWrittenCustomerChanged(p: P): MappingResult {
  const business = p.customerType === "business";
  const updates: Updates = [];
  const contact = defined({
    external_id: p.customerId,
    first_name: present(p.firstName) ? p.firstName : undefined,
    last_name: p.lastName,
    company_name: business ? p.companyName : undefined,
    customer_type: p.customerType,
    tax_id: present(p.taxId) ? p.taxId : undefined,
    status: p.status,
    full_name: business ? p.companyName : `${p.firstName} ${p.lastName}`,
    email: emails(p),
    phone: phones(p),
    address: addresses(p),
    account: setRelation("account", "customer_number", p.customerId),
  });
  updates.push({ entity_slug: "contact", unique_identifiers: { external_id: p.customerId }, attributes: contact, mode: "upsert" });
  if (business) {
    const account = defined({
      customer_number: p.customerId,
      name: p.companyName,
      tax_id: present(p.taxId) ? p.taxId : undefined,
      website: p.account && present(p.account.website) ? p.account.website : undefined,
      industry: p.account?.industry,
      company_size: p.account?.companySize,
      email: emails(p),
      phone: phones(p),
      address: addresses(p),
      payment: payment(p),
      contacts: setRelation("contact", "external_id", p.customerId),
    });
    updates.push({ entity_slug: "account", unique_identifiers: { customer_number: p.customerId }, attributes: account, mode: "upsert" });
    if (p.defaultPayment && p.defaultPayment.iban !== undefined) {
      const billing = defined({
        external_id: p.customerId,
        billing_account_number: p.customerId,
        billing_address: p.billingAddress ? address("Billing", p.billingAddress) : undefined,
        payment_method: payment(p),
        billing_contact: setRelation("contact", "external_id", p.customerId),
      });
      updates.push({ entity_slug: "billing_account", unique_identifiers: { external_id: p.customerId }, attributes: billing, mode: "upsert" });
    }
  }
  return result(updates);
}

// ---- SapBusinessPartner, written by hand --------------------------------------------------------
// JSONata's semantics spelled out where they matter: `x != ''` is false when x is missing, `&` reads
// a missing value as '', $trim also collapses inner whitespace, $replace with a string replaces all.

const nonEmpty = (v: unknown): v is string => v !== undefined && v !== "";
const own = (map: Record<string, string>, key: unknown) => (typeof key === "string" && Object.hasOwn(map, key) ? map[key] : undefined);
const trim = (s: unknown) => (typeof s === "string" ? s.replace(/[ \t\n\r]+/g, " ").replace(/^ /, "").replace(/ $/, "") : undefined);
const str = (v: unknown) => (v === undefined ? "" : String(v));
const distinct = <T>(xs: T[]) => [...new Set(xs)];
const list = (x: { results?: P[] } | undefined): P[] => x?.results ?? [];
/** The number in SAP's /Date(1492041600000)/ or /Date(1492041600000+0000)/. */
const sapMillis = (s: string) => Number(/-?\d+/.exec(s)![0]);
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const between = (s: string, open: string, close: string) => {
  const at = s.indexOf(open);
  const rest = at > -1 ? s.slice(at + open.length) : s;
  const end = rest.indexOf(close);
  return end > -1 ? rest.slice(0, end) : rest;
};
const sapKey = (bp: unknown) => String(Number(bp)).padStart(10, "0");
const USAGE_TAGS: Record<string, string> = { XXDEFAULT: "primary", BILL_TO: "billing", SHIP_TO: "delivery" };
const ROLE_TAGS: Record<string, string> = { FLCU00: "customer", FLCU01: "customer", MKK: "contract_partner", BUP002: "prospect", FLVN01: "supplier", UKM000: "credit_managed" };

function sapEmails(d: P) {
  const all = list(d.to_BusinessPartnerAddress).flatMap((a) => list(a.to_EmailAddress)).filter((e) => typeof e.EmailAddress === "string" && e.EmailAddress.includes("@"));
  const primary = all.find((e) => e.IsDefaultEmailAddress);
  const main = primary && trim(primary.EmailAddress)!.toLowerCase();
  const unique = distinct(all.map((e) => trim(e.EmailAddress)!.toLowerCase()));
  return unique.length ? unique.map((email) => ({ email, _tags: [email === main ? "primary" : "secondary"] })) : undefined;
}

function sapPhones(d: P) {
  const normalise = (p: P) => (nonEmpty(p.InternationalPhoneNumber) ? p.InternationalPhoneNumber : trim(p.PhoneNumber)!.split(/[\s/-]+/).join(""));
  const all = list(d.to_BusinessPartnerAddress);
  const phones = [
    ...all.flatMap((a) => list(a.to_PhoneNumber)).map((p) => ({ phone: normalise(p), _tags: p.IsDefaultPhoneNumber ? ["primary"] : ["landline"] })),
    ...all.flatMap((a) => list(a.to_MobilePhoneNumber)).map((p) => ({ phone: normalise(p), _tags: p.IsDefaultPhoneNumber ? ["mobile", "primary"] : ["mobile"] })),
  ];
  return phones.length ? phones : undefined;
}

function sapAddresses(d: P) {
  const sorted = [...list(d.to_BusinessPartnerAddress)].sort((l, r) => Number(l.AddressID) - Number(r.AddressID));
  const out = sorted.map((a) =>
    defined({
      street: trim(a.StreetName),
      street_number: str(a.HouseNumber) + (nonEmpty(a.HouseNumberSupplementText) ? ` ${a.HouseNumberSupplementText}` : ""),
      postal_code: a.PostalCode,
      city: a.CityName,
      country: a.Country?.toUpperCase(),
      additional_info: nonEmpty(a.CareOfName) ? `c/o ${a.CareOfName}` : undefined,
      _tags: distinct(list(a.to_AddressUsage).map((u) => own(USAGE_TAGS, u.AddressUsage)).filter((t) => t !== undefined)),
    }),
  );
  return out.length ? out : undefined;
}

function sapPayments(d: P) {
  const out = list(d.to_BusinessPartnerBank)
    .filter((b) => nonEmpty(b.IBAN))
    .map((b, i) => ({
      type: "payment_sepa",
      _primary: i === 0,
      data: defined({
        iban: b.IBAN.replaceAll(" ", ""),
        bic_number: nonEmpty(b.SWIFTCode) ? b.SWIFTCode.toUpperCase() : undefined,
        bank_name: b.BankName,
        fullname: nonEmpty(b.BankAccountHolderName) ? b.BankAccountHolderName : d.BusinessPartnerFullName,
      }),
    }));
  return out.length ? out : undefined;
}

function sapCommon(d: P) {
  return {
    customer_number: d.BusinessPartner === undefined ? undefined : String(d.BusinessPartner),
    external_id: d.BusinessPartnerUUID,
    sap_key: nonEmpty(d.BusinessPartner) ? sapKey(d.BusinessPartner) : undefined,
  };
}

function sapDates(d: P) {
  const [, h, m, s] = /^PT(\d{2})H(\d{2})M(\d{2})S$/.exec(d.LastChangeTime)!;
  return {
    customer_since: day(Number(between(d.CreationDate, "/Date(", ")/"))),
    sap_changed_at: new Date(Number(between(d.LastChangeDate, "(", ")")) + Date.parse(`1970-01-01T${h}:${m}:${s}Z`)).toISOString(),
  };
}

const salesAreas = (d: P) => list(d.to_Customer?.to_CustomerSalesArea).map((s) => `${str(s.SalesOrganization)}/${str(s.DistributionChannel)}/${str(s.Division)}`);
const roleTags = (d: P) => distinct(list(d.to_BusinessPartnerRole).map((r) => own(ROLE_TAGS, r.BusinessPartnerRole)).filter((t) => t !== undefined));
/** JSONata's sequence: nothing, one value, or an array. */
const seq = <T>(xs: T[]) => (xs.length === 0 ? undefined : xs.length === 1 ? xs[0] : xs);
const upsert = (entity_slug: string, id: string, attributes: P): Updates[number] => ({ entity_slug, unique_identifiers: { [id]: attributes[id] }, attributes, mode: "upsert" });

export function handWrittenSapBusinessPartner(payload: P): MappingResult {
  const d: P = payload.d;
  const updates: Updates = [];
  const taxes = list(d.to_BusinessPartnerTax);
  if (d.BusinessPartnerCategory === "1" && !d.IsMarkedForArchiving) {
    const names = [trim(d.FirstName), d.MiddleName, d.LastName, d.AdditionalLastName].filter(nonEmpty);
    const contact = defined({
      ...sapCommon(d),
      customer_type: "private",
      salutation: own({ "0001": "Ms.", "0002": "Mr.", "0003": "Company", "0004": "Mx." }, d.FormOfAddress),
      title: nonEmpty(d.AcademicTitle) ? own({ "0001": "Dr.", "0002": "Prof.", "0003": "Prof. Dr." }, d.AcademicTitle) : undefined,
      first_name: trim(d.FirstName),
      last_name: trim(`${str(d.LastName)} ${str(d.AdditionalLastName)}`),
      full_name: names.length ? names.join(" ") : undefined,
      birthdate: d.BirthDate ? day(sapMillis(d.BirthDate)) : undefined,
      natural_person: typeof d.IsNaturalPerson === "string" ? d.IsNaturalPerson.length > 0 : undefined,
      status: d.BusinessPartnerIsBlocked ? "blocked" : "active",
      preferred_language: own({ DE: "de", EN: "en", FR: "fr" }, d.CorrespondenceLanguage),
      tax_id: seq(taxes.filter((t) => t.BPTaxType === "DE2").map((t) => t.BPTaxNumber)),
      email: sapEmails(d),
      phone: sapPhones(d),
      address: sapAddresses(d),
      payment: sapPayments(d),
      _tags: roleTags(d),
      sales_areas: salesAreas(d),
      ...sapDates(d),
    });
    updates.push(upsert("contact", "customer_number", contact));
  }
  if (d.BusinessPartnerCategory === "2" && !d.IsMarkedForArchiving) {
    const customer: P = d.to_Customer ?? {};
    const addressList = list(d.to_BusinessPartnerAddress);
    const sectors: Record<string, string> = { "1010": "Bakery", "1020": "Food retail", "2030": "Energy", "4711": "Brewing" };
    const industry = distinct(list(d.to_BuPaIndustry).map((i) => own(sectors, i.IndustrySector) ?? i.IndustrySector).filter((s) => s !== undefined));
    const vat = taxes.find((t) => t.BPTaxType === "DE0")?.BPTaxNumber;
    const account = defined({
      ...sapCommon(d),
      name: [d.OrganizationBPName1, d.OrganizationBPName2, d.OrganizationBPName3, d.OrganizationBPName4].filter(nonEmpty).join(" ") || undefined,
      short_name: Array.from(`${str(d.SearchTerm1?.toUpperCase())} ${str(d.BusinessPartnerName)}`).slice(0, 20).join(""),
      legal_form: own({ GMBH: "GmbH", AG: "AG", KG: "KG", GMBHCOKG: "GmbH & Co. KG", EK: "e.K." }, d.LegalForm?.toUpperCase()),
      founded: d.OrganizationFoundationDate ? day(sapMillis(d.OrganizationFoundationDate)) : undefined,
      tax_id: vat ? vat : taxes.find((t) => t.BPTaxType === "DE2")?.BPTaxNumber,
      tax_numbers: taxes.length ? Object.assign({}, ...taxes.map((t) => ({ [t.BPTaxType]: nonEmpty(t.BPTaxLongNumber) ? t.BPTaxLongNumber : t.BPTaxNumber }))) : undefined,
      industry: industry.length ? industry : undefined,
      status: d.BusinessPartnerIsBlocked
        ? "blocked"
        : nonEmpty(customer.DeliveryIsBlocked) || customer.PostingIsBlocked || nonEmpty(customer.BillingIsBlockedForCustomer)
          ? "restricted"
          : "active",
      email: sapEmails(d),
      phone: sapPhones(d),
      address: sapAddresses(d),
      payment: sapPayments(d),
      _tags: roleTags(d),
      roles: distinct(list(d.to_BusinessPartnerRole).map((r) => r.BusinessPartnerRole).filter((r) => r !== undefined)).sort(),
      sales_areas: salesAreas(d),
      payment_terms: distinct(list(customer.to_CustomerSalesArea).map((s) => s.CustomerPaymentTerms).filter(nonEmpty)),
      contact_points: addressList.length
        ? addressList.reduce((n, a) => n + list(a.to_EmailAddress).length + list(a.to_PhoneNumber).length + list(a.to_MobilePhoneNumber).length, 0)
        : undefined,
      address_usages: addressList.length
        ? Object.fromEntries(addressList.map((a) => [a.AddressID, list(a.to_AddressUsage).map((u) => u.AddressUsage).filter((u) => u !== undefined)]))
        : undefined,
      ...sapDates(d),
      contacts: relation(
        "_set",
        list(d.to_BusinessPartnerContact).map((c) => ({
          $entity_unique_ids: { customer_number: c.BusinessPartnerPerson },
          _schema: "contact",
          _tags: [c.IsStandardRelationship ? "primary_contact" : "contact"],
        })),
      ),
    });
    updates.push(upsert("account", "customer_number", account));
  }
  for (const c of list(d.to_BusinessPartnerContact).filter((c) => c.RelationshipCategory === "BUR001")) {
    const contact = defined({
      customer_number: c.BusinessPartnerPerson === undefined ? undefined : String(c.BusinessPartnerPerson),
      customer_type: "business",
      company_name: d.BusinessPartnerFullName,
      _tags: c.IsStandardRelationship ? ["contact_person", "primary_contact"] : ["contact_person"],
      relationship_valid_until: day(sapMillis(c.ValidityEndDate)),
      account: relation("_set", [{ $entity_unique_ids: { customer_number: d.BusinessPartner }, _schema: "account" }]),
    });
    updates.push(upsert("contact", "customer_number", contact));
  }
  const hasUsage = (a: P, usage: string) => list(a.to_AddressUsage).some((u) => u.AddressUsage === usage);
  const addressList = list(d.to_BusinessPartnerAddress);
  const bill = addressList.find((a) => hasUsage(a, "BILL_TO")) ?? addressList.find((a) => hasUsage(a, "XXDEFAULT"));
  for (const b of list(d.to_BusinessPartnerBank).filter((b) => nonEmpty(b.IBAN))) {
    const billing = defined({
      billing_account_number: `${str(d.BusinessPartner)}-${str(b.BankIdentification)}`,
      external_id: sapKey(b.BusinessPartner) + str(b.BankIdentification),
      billing_address: bill
        ? defined({ street: trim(bill.StreetName), street_number: bill.HouseNumber, postal_code: bill.PostalCode, city: bill.CityName, country: bill.Country?.toUpperCase(), _tags: ["billing"] })
        : undefined,
      payment_method: [
        {
          type: b.CollectionAuthInd ? "payment_sepa" : "payment_invoice",
          data: defined({
            iban: b.IBAN.replace(/\s+/g, ""),
            bic_number: b.SWIFTCode?.toUpperCase(),
            bank_name: b.BankName,
            fullname: nonEmpty(b.BankAccountHolderName) ? b.BankAccountHolderName : d.BusinessPartnerFullName,
          }),
        },
      ],
      mandate_valid_from: b.CollectionAuthInd ? day(sapMillis(b.ValidityStartDate)) : undefined,
      _tags: b.CollectionAuthInd ? ["sap", "direct_debit"] : ["sap"],
      billing_contact: relation("_set", [{ $entity_unique_ids: { customer_number: d.BusinessPartner }, _schema: d.BusinessPartnerCategory === "1" ? "contact" : "account" }]),
    });
    updates.push(upsert("billing_account", "billing_account_number", billing));
  }
  return result(updates);
}

// ---- jsonata-js itself ------------------------------------------------------------------------
// The library without any engine feature (no bounds, no meter, no warnings, no schema checks): each
// text compiled once, evaluated over the engine's inputs in the engine's order; attributes built
// minimally. In array contexts the text is wrapped as the engine wraps it, so `$$` is the payload.

type Expr = jsonata.Expression;
type Source = { constant?: unknown; expr?: Expr; field?: string };

function readField(input: unknown, field: string): unknown {
  if (!field.startsWith("$.")) return (input as P | undefined)?.[field];
  let v: any = input;
  for (const m of field.slice(2).matchAll(/([^.[\]]+)|\[(\d+)\]/g)) v = v?.[m[2] ?? m[1]!];
  return v;
}

function jsonataJs(config: InboundConfiguration): (payload: unknown) => Promise<{ entity_slug: string; attributes: P }[]> {
  if (config.meter_readings.length) throw new Error("the jsonata-js baseline does not map meter readings");
  const compile = (text: string, rooted: boolean) => jsonata(rooted ? `($$ := $__payload;\n${text}\n)` : text);
  const source = (s: { constant?: unknown; jsonataExpression?: string; field?: string }, rooted: boolean): Source =>
    s.constant !== undefined ? { constant: s.constant } : s.jsonataExpression !== undefined ? { expr: compile(s.jsonataExpression, rooted) } : { field: s.field };
  const predicate = (p: boolean | string | undefined, rooted: boolean) => (typeof p === "string" ? compile(p, rooted) : p);
  const plan = config.entities.map((entity) => {
    const rooted = entity.jsonataExpression !== undefined;
    return {
      slug: entity.entity_schema,
      uniqueIds: entity.unique_ids,
      enabled: predicate(entity.enabled, false),
      condition: predicate(entity.condition, false),
      items: entity.jsonataExpression === undefined ? undefined : compile(entity.jsonataExpression, false),
      fields: entity.fields.map((f: FieldMapping) => {
        if (f._type || f.file_proxy_url) throw new Error("the jsonata-js baseline does not implement _type or file_proxy_url");
        const relations = f.relations && {
          op: f.relations.operation,
          expr: "jsonataExpression" in f.relations ? compile(f.relations.jsonataExpression, rooted) : undefined,
          items:
            "items" in f.relations
              ? f.relations.items.map((item) => ({ schema: item.entity_schema, tags: item._tags, ids: item.unique_ids.map((u: UniqueIdSource) => ({ attribute: u.attribute, ...source(u, rooted) })) }))
              : [],
        };
        return { attribute: f.attribute, enabled: predicate(f.enabled, rooted), relations, ...source(f, rooted) };
      }),
    };
  });
  const value = async (s: Source, input: unknown, bindings?: P) => (s.constant !== undefined ? s.constant : s.expr ? await s.expr.evaluate(input, bindings) : s.field !== undefined ? readField(input, s.field) : undefined);
  const holds = async (p: Expr | boolean | undefined, input: unknown, bindings?: P) => p === undefined || p === true || (p !== false && Boolean(await p.evaluate(input, bindings)));
  return async (payload) => {
    const out: { entity_slug: string; attributes: P }[] = [];
    for (const e of plan) {
      if (!(await holds(e.enabled, payload)) || !(await holds(e.condition, payload))) continue;
      let inputs: unknown[] = [payload];
      let bindings: P | undefined;
      if (e.items) {
        const v = await e.items.evaluate(payload);
        inputs = v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
        bindings = { __payload: payload };
      }
      for (const input of inputs) {
        const attributes: P = {};
        for (const f of e.fields) {
          if (!(await holds(f.enabled, input, bindings))) continue;
          let v: unknown;
          if (f.relations) {
            const refs: P[] = [];
            if (f.relations.expr) {
              const raw = await f.relations.expr.evaluate(input, bindings);
              for (const r of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
                refs.push({ $entity_unique_ids: r.unique_ids ?? r.$entity_unique_ids, _schema: r.entity_schema ?? r._schema, ...(r._tags && { _tags: r._tags }) });
              }
            }
            for (const item of f.relations.items) {
              const ids: P = {};
              for (const id of item.ids) ids[id.attribute] = await value(id, input, bindings);
              refs.push({ $entity_unique_ids: ids, _schema: item.schema, ...(item.tags && { _tags: item.tags }) });
            }
            v = refs.length ? { $relation: { [f.relations.op]: refs } } : undefined;
          } else v = await value(f, input, bindings);
          if (v !== undefined) attributes[f.attribute] = v;
        }
        if (e.uniqueIds.every((id) => attributes[id] !== undefined && attributes[id] !== null && attributes[id] !== "")) out.push({ entity_slug: e.slug, attributes });
      }
    }
    return out;
  };
}

// ---- timing -----------------------------------------------------------------------------------

async function rate(fn: () => unknown, ms: number): Promise<number> {
  const until = performance.now() + ms;
  let n = 0;
  while (performance.now() < until) {
    await fn();
    n++;
  }
  return n / (ms / 1000);
}

const json = (v: unknown) => JSON.parse(JSON.stringify(v));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const INTERPRETED = { compile: false } as MappingContext;
const roundMs = Number(process.env.ROUND_MS ?? 1000);
const ROUNDS = 3;

interface Case {
  name: string;
  config: InboundConfiguration;
  /** The first is timed; every one is checked. */
  payloads: { label: string; payload: P }[];
  handWritten: (p: P) => MappingResult;
}

/** Runs every contender on every payload of the case; throws on any difference. */
async function check(c: Case) {
  const lib = jsonataJs(c.config);
  const checked: string[] = [];
  for (const { label, payload } of c.payloads) {
    const ours = json(await runMapping(c.config, payload));
    const where = `${c.name} (${label})`;
    deepStrictEqual(ours, json(c.handWritten(payload)), `${where}: ours differs from the hand-written function`);
    deepStrictEqual(json(await runMapping(c.config, payload, INTERPRETED)), ours, `${where}: compile: false differs from the default`);
    const plain = ours.entity_updates.map((u: P) => ({ entity_slug: u.entity_slug, attributes: u.attributes }));
    deepStrictEqual(json(await lib(payload)), plain, `${where}: jsonata-js's entity attributes differ from ours`);
    if (ours.warnings.length) throw new Error(`${where}: unexpected warnings ${JSON.stringify(ours.warnings)}`);
    checked.push(label);
  }
  return { lib, checked };
}

async function measure(c: Case, { lib, checked }: Awaited<ReturnType<typeof check>>) {
  const payload = c.payloads[0]!.payload;
  const contenders: [string, () => unknown][] = [
    ["ours", () => runMapping(c.config, payload)],
    ["interpreted", () => runMapping(c.config, payload, INTERPRETED)],
    ["jsonata_js", () => lib(payload)],
    ["hand_written", () => c.handWritten(payload)],
  ];
  // Warm up each, then alternate short rounds so machine noise hits all alike.
  for (const [, fn] of contenders) await rate(fn, 300);
  const rates: Record<string, number[]> = Object.fromEntries(contenders.map(([name]) => [name, []]));
  for (let i = 0; i < ROUNDS; i++) for (const [name, fn] of contenders) rates[name]!.push(await rate(fn, roundMs));
  return {
    mapping: c.name,
    expressions: expressionsOf(c.config).length,
    timed_payload: c.payloads[0]!.label,
    ...Object.fromEntries(Object.entries(rates).map(([name, xs]) => [name, median(xs)])),
    equal_output: { hand_written: true, interpreted: true, jsonata_js_attributes: true, payloads: checked },
  };
}

const cases: Case[] = [
  {
    name: "CustomerChanged",
    config: InboundConfiguration.parse(readJson(`${examples}/mapping.CustomerChanged.json`)),
    payloads: (() => {
      const business = readJson(`${examples}/payload.customer.json`);
      return [
        { label: "business customer", payload: business },
        { label: "private customer", payload: { ...business, customerType: "private" } },
      ];
    })(),
    handWritten: handWrittenCustomerChanged,
  },
  {
    name: "SapBusinessPartner",
    config: InboundConfiguration.parse(readJson(`${fixtures}/mapping.SapBusinessPartner.json`)),
    payloads: [
      { label: "organisation", payload: readJson(`${fixtures}/payload.sap-business-partner.json`) },
      { label: "person", payload: readJson(`${fixtures}/payload.sap-business-partner-person.json`) },
    ],
    handWritten: handWrittenSapBusinessPartner,
  },
];

// Correctness first for every case, so a difference fails before any timing.
const prepared = [];
for (const c of cases) prepared.push(await check(c));
const results = [];
for (const [i, c] of cases.entries()) results.push(await measure(c, prepared[i]!));
console.log(JSON.stringify({ mappings: results, round_ms: roundMs, rounds: ROUNDS, rss_bytes: process.memoryUsage().rss }));
