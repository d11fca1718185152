// Mapping benchmark (run by bench/run.mjs, bundled with esbuild, in one Node process): evaluations/s
// of the published CustomerChanged mapping through our engine, against a hand-written TypeScript
// function that produces the same entity updates (checked equal before timing).
import { deepStrictEqual } from "node:assert";
import { readFileSync } from "node:fs";
import { runMapping, type MappingResult } from "../src/mapping/engine";
import { InboundConfiguration } from "../src/mapping/schema";

const dir = process.env.EXAMPLES_DIR!;
const config = InboundConfiguration.parse(JSON.parse(readFileSync(`${dir}/mapping.CustomerChanged.json`, "utf8")));
const payload = JSON.parse(readFileSync(`${dir}/payload.customer.json`, "utf8"));

type P = Record<string, any>;
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
const relation = (schema: string, attribute: string, value: unknown) => ({ $relation: { _set: [{ $entity_unique_ids: { [attribute]: value }, _schema: schema }] } });
const defined = (o: P) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** CustomerChanged, written by hand. */
export function handWritten(p: P): MappingResult {
  const business = p.customerType === "business";
  const updates: MappingResult["entity_updates"] = [];
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
    account: relation("account", "customer_number", p.customerId),
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
      contacts: relation("contact", "external_id", p.customerId),
    });
    updates.push({ entity_slug: "account", unique_identifiers: { customer_number: p.customerId }, attributes: account, mode: "upsert" });
    if (p.defaultPayment && p.defaultPayment.iban !== undefined) {
      const billing = defined({
        external_id: p.customerId,
        billing_account_number: p.customerId,
        billing_address: p.billingAddress ? address("Billing", p.billingAddress) : undefined,
        payment_method: payment(p),
        billing_contact: relation("contact", "external_id", p.customerId),
      });
      updates.push({ entity_slug: "billing_account", unique_identifiers: { external_id: p.customerId }, attributes: billing, mode: "upsert" });
    }
  }
  return { entity_updates: updates, meter_readings_updates: [], warnings: [] };
}

async function rate(fn: () => unknown, ms: number): Promise<number> {
  const until = performance.now() + ms;
  let n = 0;
  while (performance.now() < until) {
    await fn();
    n++;
  }
  return n / (ms / 1000);
}

const ours = () => runMapping(config, payload);
const theirs = () => handWritten(payload);
deepStrictEqual(JSON.parse(JSON.stringify(await ours())), JSON.parse(JSON.stringify(theirs())));
const privatePayload = { ...payload, customerType: "private" };
deepStrictEqual(JSON.parse(JSON.stringify(await runMapping(config, privatePayload))), JSON.parse(JSON.stringify(handWritten(privatePayload))));

// Warm up both, then alternate short rounds so machine noise hits both alike.
await rate(ours, 500);
await rate(theirs, 300);
const roundMs = Number(process.env.ROUND_MS ?? 1000);
const oursRates: number[] = [];
const theirRates: number[] = [];
for (let i = 0; i < 3; i++) {
  oursRates.push(await rate(ours, roundMs));
  theirRates.push(await rate(theirs, roundMs));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(JSON.stringify({ ours: median(oursRates), hand_written: median(theirRates), equal_output: true, rss_bytes: process.memoryUsage().rss }));
