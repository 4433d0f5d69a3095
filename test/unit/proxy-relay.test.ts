/**
 * The relay path on plain TCP through the JS relay (src/proxy/relay.ts); the
 * tests are in test/helpers/relay-suite.ts, which proxy-relay-native.test.ts
 * runs against the native relay.
 */
import t from 'tap';

import { relaySuite } from '../helpers/relay-suite.js';

relaySuite(t, 'js');
