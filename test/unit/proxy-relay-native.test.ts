/**
 * The relay suite (test/helpers/relay-suite.ts) against the native relay
 * (src/proxy/native-relay.ts, native/relay.cc): the same plain-TCP tests the
 * JS relay passes, through the addon's epoll thread. Needs the addon built.
 */
import t from 'tap';

import { relaySuite } from '../helpers/relay-suite.js';

relaySuite(t, 'native');
