// normalise_business_partner through the SDK's harness, as erp-edge runs it before the business-partners
// mapping (`npx erp-edge app test blueprints/sap-s4hana/app`), on the blueprint's own fixture messages.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { runAction } from "@erp-edge/apps-sdk";
import app from "../src/index";

// Tests run from the app's folder; the blueprint's fixtures are one level up.
const read = (path: string) => JSON.parse(readFileSync(`../fixtures/${path}`, "utf8"));
const normalise = (input: unknown) => runAction(app, "normalise_business_partner", input, { config: {} });

describe("the blueprint's business partner messages", () => {
  test("a person as API_BUSINESS_PARTNER sends it becomes the plain record the mapping reads", async () => {
    const { output, logs } = await normalise(read("payloads/business-partner-1000234.json"));
    assert.deepEqual(output, {
      BusinessPartner: "1000234",
      BusinessPartnerCategory: "person",
      Customer: "1000234",
      BusinessPartnerFullName: "Anna Schmidt",
      BusinessPartnerGrouping: "BP02",
      BusinessPartnerName: "Anna Schmidt",
      BusinessPartnerUUID: "fa5e3c1e-7a1b-4f0e-9d2a-5b6c0e3a9d41",
      CorrespondenceLanguage: "DE",
      CreatedByUser: "MIGRATION",
      CreationDate: "2019-04-01",
      CreationTime: "10:12:00",
      FirstName: "Anna",
      FormOfAddress: "0001",
      IsFemale: true,
      IsMale: false,
      IsNaturalPerson: "X",
      IsSexUnknown: false,
      LastChangeDate: "2026-11-02",
      LastChangeTime: "08:15:00",
      LastChangedByUser: "CPIC_BP",
      LastName: "Schmidt",
      SearchTerm1: "SCHMIDT",
      BusinessPartnerIsBlocked: false,
      IsMarkedForArchiving: false,
      to_BusinessPartnerAddress: [
        {
          BusinessPartner: "1000234",
          AddressID: "29371",
          ValidityStartDate: "2019-04-01",
          ValidityEndDate: "9999-12-31",
          CityName: "Berlin",
          Country: "DE",
          HouseNumber: "12",
          Language: "DE",
          PostalCode: "10119",
          Region: "BE",
          StreetName: "Torstraße",
          to_EmailAddress: [
            {
              AddressID: "29371",
              OrdinalNumber: "1",
              IsDefaultEmailAddress: true,
              EmailAddress: "anna.schmidt@example.org",
              SearchEmailAddress: "ANNA.SCHMIDT@EXAMPLE"
            }
          ],
          to_PhoneNumber: [
            {
              AddressID: "29371",
              OrdinalNumber: "1",
              DestinationLocationCountry: "DE",
              IsDefaultPhoneNumber: true,
              PhoneNumber: "030 1234567",
              PhoneNumberType: "1"
            }
          ],
          to_MobilePhoneNumber: []
        }
      ],
      to_BusinessPartnerTax: []
    });
    assert.equal(logs[0]!.message, "normalised 1 business partner(s) (1000234 person): dates=4 times=2 unwrapped=6 deferred=0");
  });

  test("an organisation keeps its names and tax numbers, its category a word", async () => {
    const { output } = await normalise(read("payloads/business-partner-1000235.json"));
    const partner = output as Record<string, any>;
    assert.equal(partner.BusinessPartnerCategory, "organisation");
    assert.equal(`${partner.OrganizationBPName1} ${partner.OrganizationBPName2}`, "Bäckerei Müller GmbH");
    assert.deepEqual(partner.to_BusinessPartnerTax, [{ BusinessPartner: "1000235", BPTaxType: "DE0", BPTaxNumber: "DE811234567" }]);
    assert.equal(partner.FirstName, undefined);
  });

  test("normalising twice is normalising once, so a plain record passes unchanged", async () => {
    const once = (await normalise(read("payloads/business-partner-1000234.json"))).output;
    assert.deepEqual((await normalise(once)).output, once);
  });
});

describe("OData v2 values", () => {
  test("dates become dates or instants, Edm.Time a time, the category a word, ALPHA keys lose their zeros", async () => {
    const { output } = await normalise({
      d: {
        __metadata: { uri: "https://s4/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner('0001000300')" },
        BusinessPartner: "0001000300",
        Customer: "0001000300",
        BusinessPartnerCategory: "2",
        OrganizationBPName1: "Stadtwerke Musterstadt",
        OrganizationBPName2: "",
        OrganizationFoundationDate: "/Date(-315619200000)/",
        LastChangeDate: "/Date(1796256000000)/",
        LastChangeTime: "PT7H5M9S",
        ValidityStartDate: "/Date(1796283000000+0000)/",
        BusinessPartnerIsBlocked: true,
      },
    });
    assert.deepEqual(output, {
      BusinessPartner: "1000300",
      Customer: "1000300",
      BusinessPartnerCategory: "organisation",
      OrganizationBPName1: "Stadtwerke Musterstadt",
      OrganizationFoundationDate: "1960-01-01",
      LastChangeDate: "2026-12-03",
      LastChangeTime: "07:05:09",
      ValidityStartDate: "2026-12-03T07:30:00.000Z",
      BusinessPartnerIsBlocked: true,
    });
  });

  test("a collection becomes an array; navigation properties not expanded are left out", async () => {
    const { output } = await normalise({
      d: {
        results: [
          { BusinessPartner: "1000301", BusinessPartnerCategory: "1", to_BusinessPartnerAddress: { __deferred: { uri: "https://s4/…/to_BusinessPartnerAddress" } } },
          { BusinessPartner: "1000302", BusinessPartnerCategory: "3", to_BusinessPartnerTax: { results: [] } },
        ],
      },
    });
    assert.deepEqual(output, [
      { BusinessPartner: "1000301", BusinessPartnerCategory: "person" },
      { BusinessPartner: "1000302", BusinessPartnerCategory: "group", to_BusinessPartnerTax: [] },
    ]);
  });

  test("strings that only look like OData dates or times stay as they are", async () => {
    const input = { BusinessPartner: "1000303", BusinessPartnerCategory: "1", SearchTerm1: "Date(1)", SearchTerm2: "/Date(abc)/", FirstName: "PT", LastName: "PT1H" };
    assert.deepEqual((await normalise(input)).output, { ...input, BusinessPartnerCategory: "person" });
  });
});

describe("what it refuses", () => {
  test("a payload that is not a business partner fails the run with what is missing", async () => {
    await assert.rejects(normalise({ d: { Customer: "1000234" } }), /not an A_BusinessPartner: it has no BusinessPartner/);
    await assert.rejects(normalise({ BusinessPartner: "1000234", BusinessPartnerCategory: "9" }), /BusinessPartnerCategory "9" is not 1, 2 or 3/);
    await assert.rejects(normalise([{ BusinessPartner: "1", BusinessPartnerCategory: "1" }, { Customer: "2" }]), /item 1: not an A_BusinessPartner/);
    await assert.rejects(normalise("1000234"), /Invalid input/);
  });

  test("a key named __proto__ never becomes a prototype, and nesting past 16 levels is refused", async () => {
    const { output } = await normalise(JSON.parse('{"BusinessPartner":"1000304","BusinessPartnerCategory":"1","__proto__":{"polluted":"yes"}}'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(output), Object.prototype);
    assert.equal((output as Record<string, unknown>).polluted, undefined);
    let deep: Record<string, unknown> = { x: 1 };
    for (let i = 0; i < 20; i++) deep = { nested: deep };
    await assert.rejects(normalise({ BusinessPartner: "1000305", BusinessPartnerCategory: "1", deep }), /nested deeper than 16 levels/);
  });
});
