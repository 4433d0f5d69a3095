/**
 * The raw TCP options parser the functional test checks the wire with, on
 * option blocks laid out as the kernel sends them.
 */
import t from 'tap';

import { TCP_OPTION_AO, TCP_OPTION_MD5, aoProblems, parseTcpOptions, type Segment } from '../helpers/wire-capture.js';

const mac12 = 'aa'.repeat(12);

t.test('a SYN with MSS, SACK-permitted, timestamps, window scale and TCP-AO', async (t) => {
  // MSS 1460 | SACK-perm | TS | NOP | WS 7 | AO len 16 keyid 7 rnext 7 + 12-byte MAC
  const hex = '020405b4' + '0402' + '080a0000000100000000' + '01' + '030307' + '1d100707' + mac12;
  const options = parseTcpOptions(Buffer.from(hex, 'hex'));
  t.same(
    options.map((option) => option.kind),
    [2, 4, 8, 3, TCP_OPTION_AO],
  );
  t.same(options[4]?.ao, { keyId: 7, rnextKeyId: 7, macLength: 12 });
});

t.test('NOP padding and EOL end the block', async (t) => {
  const options = parseTcpOptions(Buffer.from('0101' + '1d100305' + mac12 + '00' + 'ffff', 'hex'));
  t.same(options, [{ kind: TCP_OPTION_AO, length: 16, ao: { keyId: 3, rnextKeyId: 5, macLength: 12 } }]);
});

t.test('an MD5 option is reported as kind 19', async (t) => {
  const options = parseTcpOptions(Buffer.from('0101' + '1312' + 'bb'.repeat(16), 'hex'));
  t.same(options, [{ kind: TCP_OPTION_MD5, length: 18 }]);
});

t.test('malformed blocks are errors, not silently skipped', async (t) => {
  t.throws(() => parseTcpOptions(Buffer.from('1d0107', 'hex')), /malformed TCP option kind 29/);
  t.throws(() => parseTcpOptions(Buffer.from('1d20070700', 'hex')), /malformed/);
  t.throws(() => parseTcpOptions(Buffer.from('1d0307', 'hex')), /too short/);
});

function segment(optionsHex: string, tsharkKinds: number[], keyId: number | undefined): Segment {
  return {
    frame: 1,
    src: '10.10.10.1',
    dst: '10.10.10.2',
    srcPort: 40_000,
    dstPort: 1790,
    flags: '·······A····',
    syn: false,
    ack: true,
    payload: Buffer.alloc(0),
    options: parseTcpOptions(Buffer.from(optionsHex, 'hex')),
    tsharkKinds,
    tsharkAoKeyId: keyId,
    tsharkAoRnextKeyId: keyId,
  };
}

t.test('aoProblems names each way a segment falls short', async (t) => {
  t.same(aoProblems(segment('0101' + '1d100707' + mac12, [1, 1, 29], 7), 7, 7), [], 'a signed segment with the right ids');
  t.match(aoProblems(segment('0101080a0000000100000002', [1, 1, 8], undefined), 7, 7), [/0 TCP-AO options/, /tshark sees no option 29/, /tshark reads KeyID undefined/]);
  t.match(aoProblems(segment('1d100307' + mac12, [29], 3), 7, 7), [/KeyID 3 RNextKeyID 7/, /tshark reads KeyID 3/]);
  t.match(aoProblems(segment('1d100707' + mac12 + '1312' + 'bb'.repeat(16), [29, 19], 7), 7, 7), [/an MD5 option/, /tshark sees option 19/]);
});
