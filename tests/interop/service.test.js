// SPDX-License-Identifier: MIT
// The Node.js service SDK (azure-iot-provisioning-service) against dpsd: the
// user's enrollment-group scenario and the rest of the service API. The SDK
// runs in a child process that trusts dpsd's development CA.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');

const { startDpsd, dpsctl, runChild } = require('./lib/dpsd');

test('service SDK scenario against dpsd', async () => {
  const d = await startDpsd('service-interop', ['--linked-hub', 'hub-a.example.net']);
  let stopped = false;
  try {
    const pki = path.join(d.dir, 'pki');
    fs.mkdirSync(pki);
    dpsctl(['cert', 'create-root', '--subject', 'CN=Interop Root', '--out', path.join(pki, 'root')]);
    dpsctl(['cert', 'create-intermediate', '--ca', path.join(pki, 'root'), '--subject',
      'CN=Interop Intermediate', '--out', path.join(pki, 'inter')]);
    dpsctl(['cert', 'create-device', '--ca', path.join(pki, 'inter'), '--registration-id',
      'interop-x509', '--out', path.join(pki, 'interop-x509')]);
    const r = await runChild(path.join(__dirname, 'lib', 'service_scenario.js'), {
      NODE_EXTRA_CA_CERTS: d.ca,
      DPS_CONNECTION_STRING: d.connectionString,
      DPS_PKI: pki,
      DPS_ID_SCOPE: d.idScope,
      DPS_CA: d.ca,
    });
    process.stdout.write(r.stdout);
    assert.strictEqual(r.code, 0, `scenario failed:\n${r.stdout}\n${r.stderr}\n-- dpsd --\n${d.stderr()}`);
    const status = await d.stop();
    stopped = true;
    assert.deepStrictEqual(status, { code: 0, signal: null }, d.stderr());
    fs.rmSync(d.dir, { recursive: true, force: true });
  } finally {
    if (!stopped) await d.stop();
  }
});
