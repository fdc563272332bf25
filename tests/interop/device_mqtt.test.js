// SPDX-License-Identifier: MIT
// The Node.js device SDK over MQTT against dpsd (issue 6), with the
// unmodified azure-iot-provisioning-device-mqtt, both its Mqtt (TLS on
// 8883) and MqttWs (WebSocket on 443) transports, over the matrix of
// device_http.test.js (lib/device_matrix.js): every positive case and every
// refusal, each checked twice: the error the device got and the reason the
// operator reads in GET /registrations/{id}/attempts.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');

const { startDpsd, runChild, serviceCall } = require('./lib/dpsd');
const { HUBS, attemptOf, setupMatrix } = require('./lib/device_matrix');

async function runTransport(transport) {
  const d = await startDpsd(`device-${transport}`, ['--linked-hub', HUBS[0], '--linked-hub',
    `${HUBS[1]},weight=2`]);
  let stopped = false;
  try {
    const cases = await setupMatrix(d, path.join(d.dir, 'pki'));
    const casesFile = path.join(d.dir, 'cases.json');
    fs.writeFileSync(casesFile, JSON.stringify(cases));
    const r = await runChild(path.join(__dirname, 'lib', 'device_scenario.js'), {
      NODE_EXTRA_CA_CERTS: d.ca, DPS_ID_SCOPE: d.idScope, DPS_CASES: casesFile,
      DPS_TRANSPORT: transport,
    });
    assert.strictEqual(r.code, 0, `device scenario failed:\n${r.stdout}\n${r.stderr}\n-- dpsd --\n${d.stderr()}`);
    const outcome = Object.fromEntries(JSON.parse(r.stdout).map((o) => [o.name, o]));
    const show = (name) => `${transport}: ${JSON.stringify(outcome[name])}`;

    async function assigned(name, id, deviceId, group) {
      const o = outcome[name];
      assert.ok(o.ok, `${name}: ${show(name)}`);
      assert.strictEqual(o.result.registrationId, id, show(name));
      assert.strictEqual(o.result.deviceId, deviceId, show(name));
      assert.ok(HUBS.includes(o.result.assignedHub), show(name));
      const rec = await serviceCall(d, 'GET', `/registrations/${id}`);
      assert.strictEqual(rec.status, 200, JSON.stringify(rec.body));
      assert.strictEqual(rec.body.assignedHub, o.result.assignedHub);
      assert.strictEqual(rec.body.enrollmentGroupId, group, JSON.stringify(rec.body));
      const { a } = await attemptOf(d, id);
      assert.strictEqual(a.status, 'assigned', JSON.stringify(a));
    }
    await assigned('node-x509-root', 'node-x509-root', 'node-x509-root', 'root-group');
    await assigned('node-x509-inter', 'node-x509-inter', 'node-x509-inter', 'inter-group');
    await assigned('node-x509-ind', 'node-x509-ind', 'node-x509-device', undefined);
    await assigned('sym-derived', 'node-sym-dev', 'node-sym-dev', 'sym-group');
    assert.ok(outcome['sym-individual'].ok, show('sym-individual'));
    assert.strictEqual(outcome['sym-individual'].result.deviceId, 'node-sym-ind');

    /*
     * An X.509 refusal comes on the response topic: status 401 with dpsd's
     * 401002 body, which the SDK turns into an UnauthorizedError; the reason
     * is recorded under the body's tracking id.
     */
    async function refusedOnTopic(name, id, ...words) {
      const o = outcome[name];
      assert.ok(!o.ok, `${name} should fail: ${show(name)}`);
      assert.strictEqual(o.error.name, 'UnauthorizedError', show(name));
      assert.strictEqual(o.error.body.errorCode, 401002, show(name));
      assert.doesNotMatch(o.error.body.message, /root-group|inter-group|sym-group|Node .* Root/, show(name));
      const { a, why } = await attemptOf(d, id, o.error.body.trackingId);
      assert.strictEqual(a.status, 'unauthorized', JSON.stringify(a));
      for (const w of words) {
        if (w instanceof RegExp) assert.match(why, w, `${name}: ${why}`);
        else assert.ok(why.includes(w), `${name}: '${w}' not in:\n${why}`);
      }
    }
    await refusedOnTopic('node-unknown', 'node-unknown', /not trusted|no enrollment|does not lead/);
    await refusedOnTopic('node-expired', 'node-expired', 'expired', '2020-06-30');
    await refusedOnTopic('node-future', 'node-future', 'not yet valid', '2099-01-01');
    await refusedOnTopic('node-forged', 'node-forged', 'root-group', /forged|different key/);
    await refusedOnTopic('node-cn-a', 'node-cn-b', "'node-cn-a'", "'node-cn-b'", 'differs');

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
      for (const w of words) {
        if (w instanceof RegExp) assert.match(why, w, `${name}: ${why}`);
        else assert.ok(why.includes(w), `${name}: '${w}' not in:\n${why}`);
      }
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

    /* The upper-case CN: the registration id is refused before any enrollment is read. */
    await refusedOnTopic('Node-Upper', 'Node-Upper', 'not a valid registration id');

    /* A disabled enrollment: status "disabled", which the SDK reports as an unknown status. */
    async function disabled(name, id, ...words) {
      const o = outcome[name];
      assert.ok(!o.ok, `${name} should fail: ${show(name)}`);
      assert.match(o.error.message, /disabled/, show(name));
      const { a, why } = await attemptOf(d, id);
      assert.strictEqual(a.status, 'disabled', JSON.stringify(a));
      for (const w of words) assert.ok(why.includes(w), `${name}: '${w}' not in:\n${why}`);
    }
    await disabled('node-disabled', 'node-disabled', "enrollment group 'off-group'", 'disabled');
    await disabled('node-blocked', 'node-blocked', "individual enrollment 'node-blocked'", 'disabled');

    const status = await d.stop();
    stopped = true;
    assert.deepStrictEqual(status, { code: 0, signal: null }, d.stderr());
    fs.rmSync(d.dir, { recursive: true, force: true });
  } finally {
    if (!stopped) await d.stop();
  }
}

test('device SDK over MQTT (Mqtt, TLS on 8883) against dpsd', () => runTransport('mqtt'));
test('device SDK over MQTT over WebSocket (MqttWs, 443) against dpsd', () => runTransport('mqtt-ws'));
