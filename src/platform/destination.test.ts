// The destination rules against every address form we know of, as workerd's URL parser hands them over.
import { describe, expect, it } from "vitest";
import { addressProblem, checkDestination, DestinationLookupError, destinationPolicy, destinationProblem, parseAddress, type Resolver } from "./destination";

/** Teredo: server IPv4 in the third and fourth groups, client IPv4 inverted in the last two. */
const teredo = (server: string, client: string) => {
  const hex = (ip: string, invert: boolean) => {
    const [a, b, c, d] = ip.split(".").map(Number) as [number, number, number, number];
    const flip = (n: number) => (invert ? n ^ 0xffff : n).toString(16);
    return `${flip((a << 8) | b)}:${flip((c << 8) | d)}`;
  };
  return `http://[2001:0:${hex(server, false)}:0:0:${hex(client, true)}]/`;
};

const refused: [string, string][] = [
  // loopback, spelled every way
  ["http://127.0.0.1/", "loopback"],
  ["http://127.0.0.1./", "loopback"],
  ["http://127.255.255.254:8080/x", "loopback"],
  ["http://2130706433/", "loopback"],
  ["http://0x7f000001/", "loopback"],
  ["http://0x7f.1/", "loopback"],
  ["http://0177.0.0.1/", "loopback"],
  ["http://127.1/", "loopback"],
  ["http://%31%32%37.0.0.1/", "loopback"],
  ["http://[::1]/", "loopback"],
  ["http://[0:0:0:0:0:0:0:1]:9000/", "loopback"],
  // IPv4 inside IPv6
  ["http://[::ffff:7f00:1]/", "loopback"],
  ["http://[::ffff:127.0.0.1]/", "loopback"],
  ["http://[0:0:0:0:0:ffff:127.0.0.1]/", "loopback"],
  ["http://[::ffff:10.0.0.1]/", "private"],
  ["http://[::ffff:169.254.169.254]/", "linkLocal"],
  ["http://[::127.0.0.1]/", "loopback"],
  ["http://[::10.1.2.3]/", "private"],
  ["http://[::ffff:0:127.0.0.1]/", "loopback"],
  ["http://[64:ff9b::7f00:1]/", "loopback"],
  ["http://[64:ff9b::169.254.169.254]/", "linkLocal"],
  ["http://[64:ff9b:1::808:808]/", "local-use NAT64"],
  ["http://[2002:7f00:1::]/", "loopback"],
  ["http://[2002:a9fe:a9fe::1]/", "linkLocal"],
  [teredo("65.54.227.120", "127.0.0.1"), "loopback"],
  [teredo("10.0.0.1", "8.8.8.8"), "private"],
  // unspecified, private, link-local, shared, reserved, multicast, broadcast
  ["http://0.0.0.0/", "unspecified"],
  ["http://0/", "unspecified"],
  ["http://[::]/", "unspecified"],
  ["http://10.1.2.3/", "private"],
  ["http://172.16.0.1/", "private"],
  ["http://172.31.255.255/", "private"],
  ["http://192.168.1.1/", "private"],
  ["http://169.254.169.254/latest/meta-data", "linkLocal"],
  ["http://100.64.0.1/", "carrierGradeNat"],
  ["http://100.100.100.200/", "carrierGradeNat"],
  ["http://192.0.0.8/", "reserved"],
  ["http://198.18.0.1/", "reserved"],
  ["http://240.0.0.1/", "reserved"],
  ["http://224.0.0.1/", "multicast"],
  ["http://255.255.255.255/", "broadcast"],
  ["http://192.31.196.1/", "as112"],
  ["http://192.52.193.1/", "amt"],
  ["http://[fe80::1]/", "linkLocal"],
  ["http://[fc00::1]/", "uniqueLocal"],
  ["http://[fd12:3456:789a::1]/", "uniqueLocal"],
  ["http://[fec0::1]/", "deprecatedSiteLocal"],
  ["http://[ff02::1]/", "multicast"],
  ["http://[2001:db8::1]/", "reserved"],
  ["http://[2001:2::1]/", "benchmarking"],
  ["http://[100::1]/", "discard"],
  // names
  ["http://localhost/", "local name"],
  ["http://localhost./", "local name"],
  ["http://LOCALHOST../", "local name"],
  ["http://api.localhost:3000/", "local name"],
  ["http://metadata/", "metadata"],
  ["http://metadata.google.internal/computeMetadata/v1/", "local name"],
  ["http://metadata.example.com/", "metadata"],
  ["http://instance-data.ec2.internal/", "local name"],
  ["http://printer.local/", "local name"],
  ["http://nas.home.arpa/", "local name"],
  ["http://intranet/", "local name"],
  ["http://fileserver/", "single-label"],
  ["http://erp:8080/", "single-label"],
  // schemes and credentials
  ["ftp://example.com/x", "scheme"],
  ["file:///etc/passwd", "scheme"],
  ["gopher://example.com:70/", "scheme"],
  ["ws://example.com/", "scheme"],
  ["https://user:pass@erp.example.com/hook", "credentials"],
  ["https://user@erp.example.com/hook", "credentials"],
  ["not a url", "not a URL"],
];

const accepted = [
  "https://erp.example.com/hook",
  "https://erp.example.com:8443/hook?x=1",
  "http://erp.example.com./hook",
  "https://my-metadata.example.com/",
  "https://xn--bcher-kva.example/",
  "https://erp.example.co.uk/",
  "https://8.8.8.8/",
  "https://1.1.1.1:443/",
  "http://93.184.216.34/",
  "http://172.32.0.1/",
  "http://100.128.0.1/",
  "https://[2606:4700:4700::1111]/",
  "https://[2001:4860:4860::8888]:8443/",
  "https://[::ffff:8.8.8.8]/",
  "https://[64:ff9b::8.8.8.8]/",
  "https://[2002:808:808::1]/",
  teredo("65.54.227.120", "8.8.4.4"),
];

describe("destinationProblem", () => {
  it.each(refused)("refuses %s (%s)", (url, why) => {
    expect(destinationProblem(url, [])).toContain(why);
  });

  it.each(accepted)("accepts %s", (url) => {
    expect(destinationProblem(url, [])).toBeNull();
  });

  it("exempts allow-listed hosts by their canonical form, and only those", () => {
    expect(destinationProblem("http://127.0.0.1:8080/hook", ["127.0.0.1:8080"])).toBeNull();
    expect(destinationProblem("http://2130706433:8080/hook", ["127.0.0.1:8080"])).toBeNull();
    expect(destinationProblem("http://127.0.0.1:8081/hook", ["127.0.0.1:8080"])).toContain("loopback");
    expect(destinationProblem("http://[::ffff:127.0.0.1]:8080/hook", ["127.0.0.1:8080"])).toContain("loopback");
    expect(destinationProblem("http://localhost:8787/", ["LOCALHOST.:8787"])).toBeNull();
    expect(destinationProblem("http://[::1]:9000/", ["[::1]:9000"])).toBeNull();
    expect(destinationProblem("http://receiver.internal:1234/", ["receiver.internal"])).toBeNull();
    expect(destinationProblem("http://127.0.0.1/", ["127.0.0.1:80"])).toBeNull();
    // The allow-list exempts addresses, never schemes or credentials.
    expect(destinationProblem("ftp://127.0.0.1:8080/", ["127.0.0.1:8080"])).toContain("scheme");
    expect(destinationProblem("http://a:b@127.0.0.1:8080/", ["127.0.0.1:8080"])).toContain("credentials");
  });
});

describe("addressProblem", () => {
  it("judges resolved answers like literals, IPv4-mapped ones as IPv4", () => {
    expect(addressProblem(parseAddress("::ffff:127.0.0.1")!)).toContain("127.0.0.1 is loopback");
    expect(addressProblem(parseAddress("64:ff9b::a00:1")!)).toContain("10.0.0.1 is private");
    expect(addressProblem(parseAddress("2606:4700:4700::1111")!)).toBeNull();
    expect(parseAddress("erp.example.com")).toBeNull();
  });
});

describe("checkDestination with DNS", () => {
  const resolverOf = (answers: Record<string, string[]>) => {
    const asked: string[] = [];
    const resolve: Resolver = async (name) => {
      asked.push(name);
      if (!(name in answers)) throw new Error("SERVFAIL");
      return answers[name]!;
    };
    return { resolve, asked };
  };

  it("refuses a name if any of its A or AAAA answers is not public unicast", async () => {
    const { resolve } = resolverOf({
      "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
      "mapped.example.com": ["::ffff:7f00:1"],
      "inner.example.com": ["10.0.0.7"],
      "erp.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    });
    const policy = { allowed: [], resolve };
    expect(await checkDestination("https://rebind.example.com/hook", policy)).toContain("rebind.example.com resolves to 127.0.0.1 is loopback");
    expect(await checkDestination("https://mapped.example.com/hook", policy)).toContain("loopback");
    expect(await checkDestination("https://inner.example.com/hook", policy)).toContain("private");
    expect(await checkDestination("https://erp.example.com/hook", policy)).toBeNull();
  });

  it("fails closed when the lookup fails, and asks nothing for literals, allowed hosts or refused forms", async () => {
    const { resolve, asked } = resolverOf({});
    const policy = { allowed: ["receiver.example.com"], resolve };
    await expect(checkDestination("https://down.example.com/", policy)).rejects.toBeInstanceOf(DestinationLookupError);
    expect(await checkDestination("https://8.8.8.8/", policy)).toBeNull();
    expect(await checkDestination("https://receiver.example.com/", policy)).toBeNull();
    expect(await checkDestination("http://localhost/", policy)).toContain("local name");
    expect(asked).toEqual(["down.example.com"]);
  });

  it("uses DNS only when OUTBOUND_DNS_CHECK is true", async () => {
    const { resolve } = resolverOf({ "erp.example.com": ["192.168.0.10"] });
    const on = destinationPolicy({ OUTBOUND_ALLOWED_PRIVATE_HOSTS: "", OUTBOUND_DNS_CHECK: "true" }, resolve);
    const off = destinationPolicy({ OUTBOUND_ALLOWED_PRIVATE_HOSTS: "", OUTBOUND_DNS_CHECK: "false" }, resolve);
    expect(await checkDestination("https://erp.example.com/", on)).toContain("private");
    expect(await checkDestination("https://erp.example.com/", off)).toBeNull();
    expect(destinationPolicy({ OUTBOUND_ALLOWED_PRIVATE_HOSTS: " a.example:1, b.example " }).allowed).toEqual(["a.example:1", "b.example"]);
  });
});
