// SPDX-License-Identifier: MIT
// Test helpers for the browser tests: start and stop one dpsd on 127.0.0.1:443,
// and call its service API from Node with a SAS token, as any service client would.
'use strict';

const { spawn, spawnSync, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set (run through ctest)`);
  return v;
}

// Starts dpsd with a fresh data directory under DPS_TEST_TMP; resolves when it
// has printed its connection string and accepts connections. Port 443 may be
// held for a while by another test run on the machine: retry for two minutes.
// extraArgs are added to dpsd's command line (e.g. ['--linked-hub', 'hub-a.example.net']).
async function startDpsd(name, extraArgs = []) {
  const deadline = Date.now() + 120000;
  for (;;) {
    try {
      return await startOnce(name, extraArgs);
    } catch (e) {
      if (!/Address already in use/.test(e.message) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function startOnce(name, extraArgs) {
  const base = path.join(need('DPS_TEST_TMP'), `${name}-${process.pid}`);
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base, { recursive: true });
  const dataDir = path.join(base, 'data');
  const err = fs.openSync(path.join(base, 'dpsd.err'), 'w');
  const proc = spawn(need('DPSD'), ['--https-listen', '127.0.0.1:443', '--mqtt-listen', '127.0.0.1:0',
    '--hostname', 'localhost',
    '--data-dir', dataDir, '--workers', '2', '--shutdown-timeout', '5', ...extraArgs], { stdio: ['ignore', 'pipe', err] });
  let out = '';
  const connectionString = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dpsd did not start: ${out}`)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /connection string: (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dpsd exited with ${code}: ${fs.readFileSync(path.join(base, 'dpsd.err'), 'utf8')}`));
    });
  });
  proc.removeAllListeners('exit');
  const d = {
    proc, base, dataDir, connectionString,
    ca: fs.readFileSync(path.join(dataDir, 'tls', 'ca.pem')),
    idScope: fs.readFileSync(path.join(dataDir, 'id-scope'), 'utf8').trim(),
  };
  await waitReady(d);
  return d;
}

async function waitReady(d) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    try {
      const r = await request(d, 'GET', '/healthz', { noAuth: true });
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('dpsd did not become ready');
}

// Sends SIGTERM and waits for dpsd to exit; resolves with its exit code.
function stopDpsd(d) {
  if (!d || d.proc.exitCode !== null) return Promise.resolve(d ? d.proc.exitCode : 0);
  return new Promise((resolve) => {
    const kill = setTimeout(() => d.proc.kill('SIGKILL'), 15000);
    d.proc.on('exit', (code) => {
      clearTimeout(kill);
      resolve(code);
    });
    d.proc.kill('SIGTERM');
  });
}

function parseConnectionString(cs) {
  const f = {};
  for (const part of cs.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) f[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { host: f.HostName, policy: f.SharedAccessKeyName, key: f.SharedAccessKey };
}

function sasToken(cs) {
  const c = parseConnectionString(cs);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = crypto.createHmac('sha256', Buffer.from(c.key, 'base64')).update(`${c.host}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${encodeURIComponent(c.host)}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${encodeURIComponent(c.policy)}`;
}

// One service API call over TLS that trusts dpsd's development CA; resolves {status, headers, body}.
function request(d, method, p, opts = {}) {
  const body = opts.body === undefined ? null : Buffer.from(JSON.stringify(opts.body));
  const headers = { accept: 'application/json', ...(opts.headers || {}) };
  if (!opts.noAuth) headers.authorization = sasToken(d.connectionString);
  if (body) {
    headers['content-type'] = 'application/json; charset=utf-8';
    headers['content-length'] = body.length;
  }
  const sep = p.includes('?') ? '&' : '?';
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: 443, servername: 'localhost', ca: d.ca, method,
      path: `${p}${sep}api-version=2021-10-01`, headers, agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode, headers: res.headers, body: json });
      });
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${p} timed out`)));
    if (body) req.write(body);
    req.end();
  });
}

// Makes a root CA with dpsctl; returns the path of its PEM certificate.
function makeRoot(d, name, subject) {
  const prefix = path.join(d.base, name);
  execFileSync(need('DPSCTL'), ['cert', 'create-root', '--subject', subject, '--out', prefix], { stdio: 'pipe' });
  return `${prefix}.pem`;
}

// Issues a device certificate for registrationId under the CA made by makeRoot(d, caName, ...).
function makeDevice(d, caName, registrationId) {
  const prefix = path.join(d.base, registrationId);
  execFileSync(need('DPSCTL'), ['cert', 'create-device', '--ca', path.join(d.base, caName),
    '--registration-id', registrationId, '--out', prefix], { stdio: 'pipe' });
  return { cert: `${prefix}.chain.pem`, key: `${prefix}.key` };
}

// Makes the proof-of-possession certificate for a verification code with the key of the CA
// made by makeRoot(d, caName, ...); returns the path of its PEM certificate.
function makeProof(d, caName, code, name) {
  const prefix = path.join(d.base, name);
  execFileSync(need('DPSCTL'), ['cert', 'create-verification', '--ca', path.join(d.base, caName),
    '--code', code, '--out', prefix, '--force'], { stdio: 'pipe' });
  return `${prefix}.pem`;
}

// Registers a device over HTTPS with `dpsctl register`, as the device would.
// Resolves with { status, stdout, stderr }; a refused device is not an error here.
function registerDevice(d, registrationId, device) {
  const caFile = path.join(d.dataDir, 'tls', 'ca.pem');
  const r = spawnSync(need('DPSCTL'), ['register', '--id-scope', d.idScope, '--registration-id',
    registrationId, '--cert', device.cert, '--key', device.key, '--global-endpoint', 'localhost',
    '--connect-to', '127.0.0.1:443', '--ca-file', caFile, '--json'], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// The upper-case hex SHA-256 thumbprint of a PEM certificate, as Azure writes it.
function sha256Thumbprint(pemPath) {
  return new crypto.X509Certificate(fs.readFileSync(pemPath)).fingerprint256.replace(/:/g, '').toUpperCase();
}

module.exports = {
  startDpsd, stopDpsd, request, sasToken, makeRoot, makeDevice, makeProof, registerDevice, sha256Thumbprint,
  parseConnectionString,
};
