// SPDX-License-Identifier: MIT
// The Node.js device SDK over MQTT against dpsd (issue 6), with the
// unmodified azure-iot-provisioning-device-mqtt, both its Mqtt (TLS on
// 8883) and MqttWs (WebSocket on 443) transports, over the matrix of
// device_http.test.js (lib/device_matrix.js): every positive case and every
// refusal, each checked twice: the error the device got and the reason the
// operator reads in GET /registrations/{id}/attempts. An X.509 refusal comes
// on the response topic, checked by lib/device_matrix.js; here the refusals
// at CONNECT that MQTT adds.
'use strict';

const test = require('node:test');
const assert = require('node:assert');

const { serviceCall } = require('./lib/dpsd');
const { attemptOf, assertWords, runMatrix } = require('./lib/device_matrix');

async function runTransport(transport) {
  await runMatrix(`device-${transport}`, transport, async ({ d, outcome, show }) => {
    /*
     * A refused SAS is refused at CONNECT (return code 5, §5.4): the device
     * gets the MQTT refusal, no JSON; the operator's reason is the newest
     * attempt of that registration id.
     */
    async function refusedAtConnect(name, id, ...words) {
      const o = outcome[name];
      assert.ok(!o.ok, `${name} should fail: ${show(name)}`);
      assert.match(o.error.message, /not authori[sz]ed|unauthori[sz]ed/i, show(name));
      const { a, why } = await attemptOf(d, id);
      assert.strictEqual(a.status, 'unauthorized', JSON.stringify(a));
      assertWords(name, why, words);
    }
    // The cases run in order, so each refusal of node-sym-ind is its newest attempt when it runs;
    // only the last one can be checked afterwards by "newest": the others by their words.
    await refusedAtConnect('sym-expired-sas', 'node-sym-ind', 'expired');
    await refusedAtConnect('sym-group-key', 'node-sym-gk', 'group key');
    const hist = await serviceCall(d, 'GET', '/registrations/node-sym-ind/attempts');
    const whys = hist.body.filter((x) => x.status === 'unauthorized')
      .map((x) => `${x.trace.summary}\n${x.trace.steps.join('\n')}`);
    assert.ok(outcome['sym-wrong-key'].error, show('sym-wrong-key'));
    assert.match(outcome['sym-wrong-key'].error.message, /not authori[sz]ed|unauthori[sz]ed/i,
      show('sym-wrong-key'));
    assert.ok(whys.some((w) => /signature/.test(w)), whys.join('\n--\n'));
  });
}

test('device SDK over MQTT (Mqtt, TLS on 8883) against dpsd', () => runTransport('mqtt'));
test('device SDK over MQTT over WebSocket (MqttWs, 443) against dpsd', () => runTransport('mqtt-ws'));
