// The addon's UAPI structs must match the kernel byte for byte. Expected
// values: x86_64 offsets printed from include/uapi/linux/tcp.h of 6.12.117
// (shared/research/kernel-lab.md, "Struct layouts"). Bitfields are checked as
// the byte and bit mask a one-bit field sets (LSB-first on little endian).
import t from 'tap';

import { nativeLayout, type StructLayout } from '../../src/native/index.js';

const layout = nativeLayout();

function fields(s: StructLayout): Record<string, [number, number]> {
  return Object.fromEntries(Object.entries(s.fields).map(([name, f]) => [name, [f.offset, f.size]]));
}

function bits(s: StructLayout): Record<string, [number, number]> {
  return Object.fromEntries(Object.entries(s.bits).map(([name, b]) => [name, [b.byte, b.mask]]));
}

t.test('constants', async (t) => {
  t.same(layout.constants, {
    TCP_AO_ADD_KEY: 38,
    TCP_AO_DEL_KEY: 39,
    TCP_AO_INFO: 40,
    TCP_AO_GET_KEYS: 41,
    TCP_AO_MAXKEYLEN: 80,
    TCP_AO_KEYF_IFINDEX: 1,
    TCP_AO_KEYF_EXCLUDE_OPT: 2,
    sockaddr_storage: 128,
  });
});

t.test('struct tcp_ao_add is 288 bytes', async (t) => {
  const s = layout.tcp_ao_add;
  t.equal(s.size, 288);
  t.same(fields(s), {
    addr: [0, 128],
    alg_name: [128, 64],
    ifindex: [192, 4],
    reserved2: [200, 2],
    prefix: [202, 1],
    sndid: [203, 1],
    rcvid: [204, 1],
    maclen: [205, 1],
    keyflags: [206, 1],
    keylen: [207, 1],
    key: [208, 80],
  });
  t.same(bits(s), { set_current: [196, 0x01], set_rnext: [196, 0x02] });
});

t.test('struct tcp_ao_del is 144 bytes', async (t) => {
  const s = layout.tcp_ao_del;
  t.equal(s.size, 144);
  t.same(fields(s), {
    addr: [0, 128],
    ifindex: [128, 4],
    reserved2: [136, 2],
    prefix: [138, 1],
    sndid: [139, 1],
    rcvid: [140, 1],
    current_key: [141, 1],
    rnext: [142, 1],
    keyflags: [143, 1],
  });
  t.same(bits(s), { set_current: [132, 0x01], set_rnext: [132, 0x02], del_async: [132, 0x04] });
});

t.test('struct tcp_ao_info_opt is 48 bytes', async (t) => {
  const s = layout.tcp_ao_info_opt;
  t.equal(s.size, 48);
  t.same(fields(s), {
    reserved2: [4, 2],
    current_key: [6, 1],
    rnext: [7, 1],
    pkt_good: [8, 8],
    pkt_bad: [16, 8],
    pkt_key_not_found: [24, 8],
    pkt_ao_required: [32, 8],
    pkt_dropped_icmp: [40, 8],
  });
  t.same(bits(s), {
    set_current: [0, 0x01],
    set_rnext: [0, 0x02],
    ao_required: [0, 0x04],
    set_counters: [0, 0x08],
    accept_icmps: [0, 0x10],
  });
});

t.test('struct tcp_ao_getsockopt is 304 bytes', async (t) => {
  const s = layout.tcp_ao_getsockopt;
  t.equal(s.size, 304);
  t.same(fields(s), {
    addr: [0, 128],
    alg_name: [128, 64],
    key: [192, 80],
    nkeys: [272, 4],
    sndid: [278, 1],
    rcvid: [279, 1],
    prefix: [280, 1],
    maclen: [281, 1],
    keyflags: [282, 1],
    keylen: [283, 1],
    ifindex: [284, 4],
    pkt_good: [288, 8],
    pkt_bad: [296, 8],
  });
  t.same(bits(s), { is_current: [276, 0x01], is_rnext: [276, 0x02], get_all: [276, 0x04] });
});
