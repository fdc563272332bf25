// SPDX-License-Identifier: MIT
// The Node.js device SDK over HTTPS against dpsd (issue 4): the user's case
// (a group enrolled with the root, a device issued by an intermediate), a
// group enrolled with an intermediate, an individual X.509 enrollment,
// symmetric-key group (derived key) and individual registrations, and every
// refusal, each checked twice: the error the device got and the reason the
// operator reads in GET /registrations/{id}/attempts.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');

const { startDpsd, runChild, serviceCall } = require('./lib/dpsd');
const { HUBS, attemptOf, setupMatrix } = require('./lib/device_matrix');

test('device SDK over HTTPS against dpsd: X.509 and symmetric keys, and the reasons of refusals', async () => {
  const d = await startDpsd('device-interop', ['--linked-hub', HUBS[0], '--linked-hub',
    `${HUBS[1]},weight=2`]);
  let stopped = false;
  try {
    const cases = await setupMatrix(d, path.join(d.dir, 'pki'));
    const casesFile = path.join(d.dir, 'cases.json');
    fs.writeFileSync(casesFile, JSON.stringify(cases));
    const r = await runChild(path.join(__dirname, 'lib', 'device_scenario.js'), {
      NODE_EXTRA_CA_CERTS: d.ca, DPS_ID_SCOPE: d.idScope, DPS_CASES: casesFile,
    });
    assert.strictEqual(r.code, 0, `device scenario failed:\n${r.stdout}\n${r.stderr}\n-- dpsd --\n${d.stderr()}`);
    const outcome = Object.fromEntries(JSON.parse(r.stdout).map((o) => [o.name, o]));
    const show = (name) => JSON.stringify(outcome[name]);

    /* An assignment: the hub, the device id and the enrollment that decided it. */
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
    // node-sym-ind's last attempt is a refusal: check its assignment by the SDK's answer.
    assert.ok(outcome['sym-individual'].ok, show('sym-individual'));
    assert.strictEqual(outcome['sym-individual'].result.deviceId, 'node-sym-ind');

    /*
     * A refusal: the SDK's UnauthorizedError with dpsd's 401002 body, no
     * enrollment named to the device, and the operator's reason recorded under
     * the same tracking id.
     */
    async function refused(name, id, ...words) {
      const o = outcome[name];
      assert.ok(!o.ok, `${name} should fail: ${show(name)}`);
      assert.strictEqual(o.error.name, 'UnauthorizedError', show(name));
      assert.strictEqual(o.error.status, 401, show(name));
      assert.strictEqual(o.error.body.errorCode, 401002, show(name));
      assert.doesNotMatch(o.error.body.message, /root-group|inter-group|sym-group|Node .* Root/, show(name));
      const { a, why } = await attemptOf(d, id, o.error.body.trackingId);
      assert.strictEqual(a.status, 'unauthorized', JSON.stringify(a));
      for (const w of words) {
        if (w instanceof RegExp) assert.match(why, w, `${name}: ${why}`);
        else assert.ok(why.includes(w), `${name}: '${w}' not in:\n${why}`);
      }
      return why;
    }
    await refused('node-unknown', 'node-unknown', /not trusted|no enrollment|does not lead/);
    await refused('node-expired', 'node-expired', 'expired', '2020-06-30');
    await refused('node-future', 'node-future', 'not yet valid', '2099-01-01');
    await refused('node-forged', 'node-forged', 'root-group', /forged|different key/);
    await refused('node-cn-a', 'node-cn-b', "'node-cn-a'", "'node-cn-b'", 'differs');
    await refused('Node-Upper', 'Node-Upper', 'not a valid registration id');
    await refused('sym-wrong-key', 'node-sym-ind', /signature/);
    await refused('sym-group-key', 'node-sym-gk', 'group key');
    await refused('sym-expired-sas', 'node-sym-ind', 'expired');

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
});
