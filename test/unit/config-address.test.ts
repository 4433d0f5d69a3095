/**
 * Endpoint and peer prefix parsing, and the prefix arithmetic behind policy
 * selection and overlap detection.
 */
import t from 'tap';

import {
  formatEndpoint,
  ipToBigInt,
  isLoopback,
  parseEndpoint,
  parsePeerPrefix,
  prefixContains,
  prefixesOverlap,
  type PeerPrefix,
} from '../../src/config/address.js';

const LISTEN = { allowUnspecified: true };
const DIAL = { allowUnspecified: false };

t.test('endpoints: IPv4 and bracketed IPv6 with a port', async (t) => {
  t.same(parseEndpoint('127.0.0.1:5000', DIAL), { ok: true, value: { host: '127.0.0.1', port: 5000, family: 4 } });
  t.same(parseEndpoint('[::1]:1', DIAL), { ok: true, value: { host: '::1', port: 1, family: 6 } });
  t.same(parseEndpoint('[2001:db8::ffff:10.0.0.1]:65535', DIAL), {
    ok: true,
    value: { host: '2001:db8::ffff:10.0.0.1', port: 65_535, family: 6 },
  });
  t.same(parseEndpoint('0.0.0.0:1790', LISTEN), { ok: true, value: { host: '0.0.0.0', port: 1790, family: 4 } });
  t.same(parseEndpoint('[::]:1790', LISTEN), { ok: true, value: { host: '::', port: 1790, family: 6 } });
  t.equal(formatEndpoint({ host: '::1', port: 5, family: 6 }), '[::1]:5');
  t.equal(formatEndpoint({ host: '10.0.0.1', port: 5, family: 4 }), '10.0.0.1:5');
});

t.test('endpoints: each kind of mistake has its own message', async (t) => {
  const message = (text: string, rules = DIAL) => {
    const result = parseEndpoint(text, rules);
    return result.ok ? 'accepted' : result.message;
  };
  t.match(message('10.0.0.1'), /^missing ":port"/);
  t.match(message('[::1]'), /^missing ":port" after the bracketed address/);
  t.match(message('::1'), /^an IPv6 address needs brackets and a port/);
  t.match(message('2001:db8::1:1790'), /^an IPv6 address needs brackets and a port/);
  t.match(message('fe80::1%eth0:1'), /zone ids/);
  t.match(message('[fe80::1%eth0]:1'), /zone ids/);
  t.match(message('localhost:5000'), /^the host is not an IP literal \(hostnames are not resolved/);
  t.match(message(':5000'), /^missing the address/);
  t.match(message('[10.0.0.1]:5000'), /^the address in brackets is not an IPv6 literal/);
  t.match(message('10.0.0.1:0'), /^port 0 is out of range/);
  t.match(message('10.0.0.1:65536'), /^port 65536 is out of range/);
  t.match(message('10.0.0.1:http'), /^the port must be an integer/);
  t.match(message('10.0.0.1:-1'), /^the port must be an integer/);
  t.match(message('10.0.0.1:'), /^the port must be an integer/);
  t.match(message('0.0.0.0:1790'), /unspecified address and cannot be dialled/);
  t.match(message('[::]:1790'), /unspecified address and cannot be dialled/);
  t.match(message('[0:0::0]:1790'), /unspecified address/, 'any spelling of ::');
  t.match(message('secret-ish-text'), /^missing ":port"/);
  t.notMatch(message('secret-ish-text:1'), /secret-ish-text/, 'the rejected text is not repeated');
});

t.test('peer prefixes', async (t) => {
  const ok = (text: string): PeerPrefix => {
    const result = parsePeerPrefix(text);
    if (!result.ok) throw new Error(`${text}: ${result.message}`);
    return result.value;
  };
  const bad = (text: string): string => {
    const result = parsePeerPrefix(text);
    return result.ok ? 'accepted' : result.message;
  };
  t.same(ok('10.0.0.2'), { address: '10.0.0.2', prefixLength: 32, family: 4 });
  t.same(ok('10.0.0.0/8'), { address: '10.0.0.0', prefixLength: 8, family: 4 });
  t.same(ok('2001:db8::2'), { address: '2001:db8::2', prefixLength: 128, family: 6 });
  t.same(ok('2001:db8::/32'), { address: '2001:db8::', prefixLength: 32, family: 6 });
  t.same(ok('0.0.0.0'), { address: '0.0.0.0', prefixLength: 0, family: 4 }, 'bare unspecified means any peer');
  t.same(ok('::/0'), { address: '::', prefixLength: 0, family: 6 });
  t.equal(bad('10.0.0.1/24'), '10.0.0.1/24 has host bits set; the kernel needs the network address: 10.0.0.0/24');
  t.equal(bad('2001:db8::1/64'), '2001:db8::1/64 has host bits set; the kernel needs the network address: 2001:db8::/64');
  t.match(bad('10.0.0.0/33'), /from 0 to 32 for IPv4/);
  t.match(bad('::/129'), /from 0 to 128 for IPv6/);
  t.match(bad('10.0.0.0/'), /prefix length must be an integer/);
  t.match(bad('10.0.0.0/+8'), /prefix length must be an integer/);
  t.match(bad('0.0.0.0/8'), /means any peer and takes only \/0/);
  t.match(bad('10.0.0.0/0'), /must be written 0\.0\.0\.0\/0/);
  t.match(bad('::ffff:10.0.0.1'), /IPv4-mapped/);
  t.match(bad('[2001:db8::1]'), /no brackets/);
  t.match(bad('10.0.0.1:179'), /not an IP address or prefix/);
  t.match(bad('fe80::1%eth0'), /zone ids/);
});

t.test('prefix arithmetic', async (t) => {
  const prefix = (text: string): PeerPrefix => {
    const result = parsePeerPrefix(text);
    if (!result.ok) throw new Error(result.message);
    return result.value;
  };
  t.equal(ipToBigInt('10.0.0.1', 4), 0x0a000001n);
  t.equal(ipToBigInt('::1', 6), 1n);
  t.equal(ipToBigInt('1::', 6), 1n << 112n);
  t.equal(ipToBigInt('::ffff:1.2.3.4', 6), (0xffffn << 32n) | 0x01020304n);
  t.equal(ipToBigInt('2001:db8:0:0:1:0:0:1', 6), ipToBigInt('2001:db8::1:0:0:1', 6));
  t.ok(prefixContains(prefix('10.0.0.0/24'), '10.0.0.255', 4));
  t.notOk(prefixContains(prefix('10.0.0.0/24'), '10.0.1.0', 4));
  t.ok(prefixContains(prefix('0.0.0.0/0'), '203.0.113.9', 4));
  t.notOk(prefixContains(prefix('0.0.0.0/0'), '2001:db8::1', 6), 'families never match each other');
  t.ok(prefixContains(prefix('2001:db8::/32'), '2001:db8:ffff::1', 6));
  t.notOk(prefixContains(prefix('2001:db8::/32'), '2001:db9::1', 6));
  t.ok(prefixesOverlap(prefix('10.0.0.0/8'), prefix('10.1.0.0/16')));
  t.ok(prefixesOverlap(prefix('10.1.0.0/16'), prefix('10.0.0.0/8')), 'symmetric');
  t.notOk(prefixesOverlap(prefix('10.1.0.0/16'), prefix('10.2.0.0/16')));
  t.notOk(prefixesOverlap(prefix('10.0.0.0/8'), prefix('::/0')));
  t.ok(isLoopback('127.3.2.1', 4));
  t.ok(isLoopback('::1', 6));
  t.notOk(isLoopback('10.0.0.1', 4));
  t.notOk(isLoopback('::', 6));
});
