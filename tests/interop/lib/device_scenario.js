// SPDX-License-Identifier: MIT
// Registers devices with the unmodified Node.js device SDK over HTTPS
// (azure-iot-provisioning-device + -http + azure-iot-security-x509 /
// azure-iot-security-symmetric-key), run by device_http.test.js in a child
// process because NODE_EXTRA_CA_CERTS is read only at start-up. Environment:
// DPS_TRANSPORT (http, the default; mqtt or mqtt-ws for
// azure-iot-provisioning-device-mqtt's Mqtt and MqttWs), DPS_ID_SCOPE, DPS_CASES (a JSON file: [{name, registrationId, cert, key} |
// {name, registrationId, symmetricKey, sasExpired}]). Prints one JSON array
// of outcomes: {name, ok, result} or {name, ok: false, error: {name,
// message, status, body}}; the test judges them.
'use strict';

const fs = require('node:fs');
const { SharedAccessSignature } = require('azure-iot-common');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const { Mqtt, MqttWs } = require('azure-iot-provisioning-device-mqtt');
const { X509Security } = require('azure-iot-security-x509');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');

const idScope = process.env.DPS_ID_SCOPE;
const transports = { http: () => new Http(), mqtt: () => new Mqtt(), 'mqtt-ws': () => new MqttWs() };
const transport = transports[process.env.DPS_TRANSPORT || 'http'];
const cases = JSON.parse(fs.readFileSync(process.env.DPS_CASES, 'utf8'));

function security(c) {
  if (c.cert) {
    return new X509Security(c.registrationId, {
      cert: fs.readFileSync(c.cert, 'utf8'), key: fs.readFileSync(c.key, 'utf8') });
  }
  const s = new SymmetricKeySecurityClient(c.registrationId, c.symmetricKey);
  if (c.sasExpired) {
    // The client always signs a token valid for an hour; this one expired an hour ago.
    s.createSharedAccessSignature = (scope, cb) => cb(null, SharedAccessSignature.create(
      `${scope}/registrations/${c.registrationId}`, 'registration', c.symmetricKey,
      Math.floor(Date.now() / 1000) - 3600));
  }
  return s;
}

/* The HTTP status and parsed body behind an SDK error, where the SDK kept them. */
function answerOf(err) {
  const res = err.transportObject || err.response;
  let body = err.responseBody !== undefined ? err.responseBody : err.result;
  if (typeof body === 'string') {
    try { body = JSON.parse(body); } catch (e) { /* keep the text */ }
  }
  if ((body === undefined || body === null) && res && typeof res.body === 'string') {
    try { body = JSON.parse(res.body); } catch (e) { body = res.body; }
  }
  return { status: res ? res.statusCode : undefined, body };
}

async function main() {
  const out = [];
  for (const c of cases) {
    const client = ProvisioningDeviceClient.create('localhost', idScope, transport(), security(c));
    try {
      const result = await client.register();
      out.push({ name: c.name, ok: true, result });
    } catch (err) {
      const a = answerOf(err);
      out.push({ name: c.name, ok: false,
        error: { name: err.constructor.name, message: err.message, status: a.status, body: a.body } });
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
