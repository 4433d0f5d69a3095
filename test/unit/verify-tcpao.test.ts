/**
 * The independent verifier of the wire conformance suite
 * (test/functional/fixtures/verify_tcpao.py), run on the segments of RFC 9235
 * ("TCP-AO Test Vectors"), which no Linux kernel produced: every published
 * segment verifies, and a wrong key, a changed byte or the wrong options flag
 * is rejected. The lab suite then trusts it on captures of our own wire.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { verifierMissing, verifyCapture, type VerifierKey, type WireAlgorithm } from '../helpers/conformance';
import { scratchDir } from './doctor-fakes';

const MASTER_KEY = Buffer.from('testvector');
const CLIENT_KEY_ID = 61;
const SERVER_KEY_ID = 84;

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** A pcap file (Ethernet link type) holding the given IP packets. */
function writePcap(path: string, packets: readonly Buffer[]): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262_144, 16);
  header.writeUInt32LE(1, 20);
  const records = packets.map((packet, index) => {
    const ethernet = Buffer.alloc(14);
    ethernet.writeUInt16BE((packet[0] ?? 0) >> 4 === 6 ? 0x86dd : 0x0800, 12);
    const record = Buffer.alloc(16);
    record.writeUInt32LE(index + 1, 0);
    record.writeUInt32LE(ethernet.length + packet.length, 8);
    record.writeUInt32LE(ethernet.length + packet.length, 12);
    return Buffer.concat([record, ethernet, packet]);
  });
  writeFileSync(path, Buffer.concat([header, ...records]));
}

function keysFor(client: string, server: string, algorithm: WireAlgorithm, includeOptions: boolean, key = MASTER_KEY): VerifierKey[] {
  return [
    { sender: client, sendId: CLIENT_KEY_ID, recvId: SERVER_KEY_ID, algorithm, key, includeOptions, maclen: 12 },
    { sender: server, sendId: SERVER_KEY_ID, recvId: CLIENT_KEY_ID, algorithm, key, includeOptions, maclen: 12 },
  ];
}

interface VectorSet {
  readonly section: string;
  readonly algorithm: WireAlgorithm;
  readonly includeOptions: boolean;
  readonly client: string;
  readonly server: string;
  readonly packets: readonly Buffer[];
}

// RFC 9235 sections 4 to 7: IPv4 client 10.11.12.13, server 172.27.28.29; IPv6 fd00::1 and fd00::2.
const VECTORS: readonly VectorSet[] = [
  {
    section: '4.1 HMAC-SHA-1-96, IPv4, options included (SYN, SYN-ACK, data both ways)',
    algorithm: 'hmac-sha1',
    includeOptions: true,
    client: '10.11.12.13',
    server: '172.27.28.29',
    packets: [
      hex(`45 e0 00 4c dd 0f 40 00 ff 06 bf 6b 0a 0b 0c 0d ac 1b 1c 1d e9 d7 00 b3 fb fb ab 5a 00 00 00 00
           e0 02 ff ff ca c4 00 00 02 04 05 b4 01 03 03 08 04 02 08 0a 00 15 5a b7 00 00 00 00 1d 10 3d 54
           2e e4 37 c6 f8 ed e6 d7 c4 d6 02 e7`),
      hex(`45 e0 00 4c 65 06 40 00 ff 06 37 75 ac 1b 1c 1d 0a 0b 0c 0d 00 b3 e9 d7 11 c1 42 61 fb fb ab 5b
           e0 12 ff ff 37 76 00 00 02 04 05 b4 01 03 03 08 04 02 08 0a 84 a5 0b eb 00 15 5a b7 1d 10 54 3d
           ee ab 0f e2 4c 30 10 81 51 16 b3 be`),
      hex(`45 e0 00 87 36 a1 40 00 ff 06 65 9f 0a 0b 0c 0d ac 1b 1c 1d e9 d7 00 b3 fb fb ab 5b 11 c1 42 62
           c0 18 01 04 a1 62 00 00 01 01 08 0a 00 15 5a c1 84 a5 0b eb 1d 10 3d 54 70 64 cf 99 8c c6 c3 15
           c2 c2 e2 bf ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff 00 43 01 04 da bf 00 b4 0a 0b 0c 0d
           26 02 06 01 04 00 01 00 01 02 02 80 00 02 02 02 00 02 02 42 00 02 06 41 04 00 00 da bf 02 08 40
           06 00 64 00 01 01 00`),
      hex(`45 e0 00 87 1f a9 40 00 ff 06 7c 97 ac 1b 1c 1d 0a 0b 0c 0d 00 b3 e9 d7 11 c1 42 62 fb fb ab 9e
           c0 18 01 00 40 0c 00 00 01 01 08 0a 84 a5 0b f5 00 15 5a c1 1d 10 54 3d a6 3f 0e cb bb 2e 63 5c
           95 4d ea c7 ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff 00 43 01 04 da c0 00 b4 ac 1b 1c 1d
           26 02 06 01 04 00 01 00 01 02 02 80 00 02 02 02 00 02 02 42 00 02 06 41 04 00 00 da c0 02 08 40
           06 00 64 00 01 01 00`),
    ],
  },
  {
    section: '4.2 HMAC-SHA-1-96, IPv4, options excluded',
    algorithm: 'hmac-sha1',
    includeOptions: false,
    client: '10.11.12.13',
    server: '172.27.28.29',
    packets: [
      hex(`45 e0 00 4c 53 99 40 00 ff 06 48 e2 0a 0b 0c 0d ac 1b 1c 1d ff 12 00 b3 cb 0e fb ee 00 00 00 00
           e0 02 ff ff 54 1f 00 00 02 04 05 b4 01 03 03 08 04 02 08 0a 00 02 4c ce 00 00 00 00 1d 10 3d 54
           80 af 3c fe b8 53 68 93 7b 8f 9e c2`),
      hex(`45 e0 00 4c 32 84 40 00 ff 06 69 f7 ac 1b 1c 1d 0a 0b 0c 0d 00 b3 ff 12 ac d5 b5 e1 cb 0e fb ef
           e0 12 ff ff 38 8e 00 00 02 04 05 b4 01 03 03 08 04 02 08 0a 57 67 72 f3 00 02 4c ce 1d 10 54 3d
           09 30 6f 9a ce a6 3a 8c 68 cb 9a 70`),
      hex(`45 e0 00 87 a8 f5 40 00 ff 06 f3 4a 0a 0b 0c 0d ac 1b 1c 1d ff 12 00 b3 cb 0e fb ef ac d5 b5 e2
           c0 18 01 04 6c 45 00 00 01 01 08 0a 00 02 4c ce 57 67 72 f3 1d 10 3d 54 71 06 08 cc 69 6c 03 a2
           71 c9 3a a5 ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff 00 43 01 04 da bf 00 b4 0a 0b 0c 0d
           26 02 06 01 04 00 01 00 01 02 02 80 00 02 02 02 00 02 02 42 00 02 06 41 04 00 00 da bf 02 08 40
           06 00 64 00 01 01 00`),
      hex(`45 e0 00 87 54 37 40 00 ff 06 48 09 ac 1b 1c 1d 0a 0b 0c 0d 00 b3 ff 12 ac d5 b5 e2 cb 0e fc 32
           c0 18 01 00 46 b6 00 00 01 01 08 0a 57 67 72 f3 00 02 4c ce 1d 10 54 3d 97 76 6e 48 ac 26 2d e9
           ae 61 b4 f9 ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff 00 43 01 04 da c0 00 b4 ac 1b 1c 1d
           26 02 06 01 04 00 01 00 01 02 02 80 00 02 02 02 00 02 02 42 00 02 06 41 04 00 00 da c0 02 08 40
           06 00 64 00 01 01 00`),
    ],
  },
  {
    section: '5.1 AES-128-CMAC-96 (a 10-byte master key: the RFC 5926 KDF step), IPv4, SYN',
    algorithm: 'aes-128-cmac',
    includeOptions: true,
    client: '10.11.12.13',
    server: '172.27.28.29',
    packets: [
      hex(`45 e0 00 4c 7b 9f 40 00 ff 06 20 dc 0a 0b 0c 0d ac 1b 1c 1d c4 fa 00 b3 78 7a 1d df 00 00 00 00
           e0 02 ff ff 5a 0f 00 00 02 04 05 b4 01 03 03 08 04 02 08 0a 00 01 7e d0 00 00 00 00 1d 10 3d 54
           e4 77 e9 9c 80 40 76 54 98 e5 50 91`),
    ],
  },
  {
    section: '6.1 HMAC-SHA-1-96, IPv6, options included (SYN, SYN-ACK)',
    algorithm: 'hmac-sha1',
    includeOptions: true,
    client: 'fd00::1',
    server: 'fd00::2',
    packets: [
      hex(`6e 08 91 dc 00 38 06 40 fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 fd 00 00 00 00 00 00 00
           00 00 00 00 00 00 00 02 f7 e4 00 b3 17 6a 83 3f 00 00 00 00 e0 02 ff ff 47 21 00 00 02 04 05 a0
           01 03 03 08 04 02 08 0a 00 41 d0 87 00 00 00 00 1d 10 3d 54 90 33 ec 3d 73 34 b6 4c 5e dd 03 9f`),
      hex(`6e 01 00 9e 00 38 06 40 fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 fd 00 00 00 00 00 00 00
           00 00 00 00 00 00 00 01 00 b3 f7 e4 3f 51 99 4b 17 6a 83 40 e0 12 ff ff bf ec 00 00 02 04 05 a0
           01 03 03 08 04 02 08 0a bd 33 12 9b 00 41 d0 87 1d 10 54 3d f1 cb a3 46 c3 52 61 63 f7 1f 1f 55`),
    ],
  },
  {
    section: '7.1 AES-128-CMAC-96, IPv6, options included (the server side: SYN-ACK, data)',
    algorithm: 'aes-128-cmac',
    includeOptions: true,
    client: 'fd00::1',
    server: 'fd00::2',
    packets: [
      hex(`6e 06 15 20 00 38 06 40 fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 fd 00 00 00 00 00 00 00
           00 00 00 00 00 00 00 01 00 b3 f8 5a a6 74 4e cb 19 3c cc ed e0 12 ff ff ea bb 00 00 02 04 05 a0
           01 03 03 08 04 02 08 0a 71 da ab c8 13 e4 ab 99 1d 10 54 3d dc 28 43 a8 4e 78 a6 bc fd c5 ed 80`),
      hex(`6e 06 15 20 00 73 06 40 fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 fd 00 00 00 00 00 00 00
           00 00 00 00 00 00 00 01 00 b3 f8 5a a6 74 4e cc 19 3c cd 30 c0 18 01 00 52 f4 00 00 01 01 08 0a
           71 da ab d3 13 e4 ab a3 1d 10 54 3d c1 06 9b 7d fd 3d 69 3a 6d f3 f2 89 ff ff ff ff ff ff ff ff
           ff ff ff ff ff ff ff ff 00 43 01 04 fd e8 00 b4 01 01 01 7a 26 02 06 01 04 00 01 00 01 02 02 80
           00 02 02 02 00 02 02 42 00 02 06 41 04 00 00 fd e8 02 08 40 06 00 64 00 01 01 00`),
    ],
  },
];

function pcapOf(t: Test, packets: readonly Buffer[]): string {
  const path = join(scratchDir(t), 'vectors.pcap');
  writePcap(path, packets);
  return path;
}

const missing = verifierMissing();
if (missing !== undefined) {
  t.pass('needs the independent verifier', { skip: missing });
} else {
  for (const set of VECTORS) {
    t.test(`RFC 9235 ${set.section}`, async (t) => {
      const verdicts = verifyCapture(pcapOf(t, set.packets), {
        good: keysFor(set.client, set.server, set.algorithm, set.includeOptions),
        wrongKey: keysFor(set.client, set.server, set.algorithm, set.includeOptions, Buffer.from('testvectoR')),
        flipped: keysFor(set.client, set.server, set.algorithm, !set.includeOptions),
        swapped: keysFor(set.server, set.client, set.algorithm, set.includeOptions),
      });
      t.same(verdicts.good.rejections, [], 'no published segment is rejected');
      t.equal(verdicts.good.verified, set.packets.length, `all ${set.packets.length} published segments verify`);
      t.equal(verdicts.wrongKey.rejected, set.packets.length, 'a key one bit off rejects every segment');
      t.match(verdicts.wrongKey.rejections[0], /MAC does not verify with KeyID/);
      t.equal(verdicts.flipped.verified, 0, 'the other options flag rejects every segment (each carries options besides AO)');
      t.equal(verdicts.swapped.verified, 0, 'keys given to the wrong sender reject every segment');
    });
  }

  t.test('one changed payload byte is rejected, the rest still verify', async (t) => {
    const set = VECTORS[0] as VectorSet;
    const tampered = set.packets.map((packet) => Buffer.from(packet));
    const last = tampered[3] as Buffer;
    last[last.length - 1] = (last[last.length - 1] ?? 0) ^ 0x01;
    const verdict = verifyCapture(pcapOf(t, tampered), { good: keysFor(set.client, set.server, set.algorithm, set.includeOptions) }).good;
    t.equal(verdict.verified, 3);
    t.equal(verdict.rejected, 1);
    t.match(verdict.rejections, [/^packet 4 172\.27\.28\.29:179 \[data\]: MAC does not verify with KeyID 84$/]);
  });

  t.test('a segment without TCP-AO, or with an unknown KeyID, is rejected by name', async (t) => {
    const set = VECTORS[0] as VectorSet;
    const keys = keysFor(set.client, set.server, set.algorithm, set.includeOptions);
    const onlyClient = verifyCapture(pcapOf(t, set.packets), { client: keys.filter((key) => key.sender === set.client) }).client;
    t.equal(onlyClient.verified, 2, "the client's two segments verify");
    t.match(onlyClient.rejections, [/no key with KeyID 84 for sender 172\.27\.28\.29/, /no key with KeyID 84 for sender 172\.27\.28\.29/]);
  });
}
