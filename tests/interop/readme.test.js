// SPDX-License-Identifier: MIT
// The README's quick start check and walkthrough, run as written: every
// shell command of its steps 1 to 4 and the Node.js snippet, in a fresh
// folder where `build/` is the build under test and `var/dev/` is the data
// directory of a dpsd started as `make run` starts it. A README that drifts
// from what dpsd and dpsctl do fails here.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { startDpsd, tempDir, binary } = require('./lib/dpsd');

const root = path.resolve(__dirname, '..', '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/* The text between two headings (the first from `from` on, up to `to`). */
function section(from, to) {
  const start = readme.indexOf(from);
  const end = readme.indexOf(to, start + from.length);
  assert.ok(start >= 0 && end > start, `README has '${from}' before '${to}'`);
  return readme.slice(start, end);
}

/* The fenced blocks of one language in text, in order. */
function blocks(text, lang) {
  const re = new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g');
  return [...text.matchAll(re)].map((m) => m[1]);
}

/* Shell commands of a block: continuation lines joined, comments dropped. */
function commands(block) {
  return block.replace(/\\\n\s*/g, ' ').split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter((line) => line && !line.startsWith('#'));
}

/* The `make run` recipe's dpsd flags, so the test starts dpsd the same way. */
function makeRunFlags() {
  const makefile = fs.readFileSync(path.join(root, 'Makefile'), 'utf8');
  const recipe = makefile.match(/^run:.*\n((?:\t.*\n)+)/m)[1].replace(/\\\n\s*/g, ' ');
  const args = recipe.trim().split(/\s+/);
  const flags = args.slice(args.indexOf('build/dpsd') + 1);
  const keep = [];
  for (let i = 0; i < flags.length; i += 2) {
    /* The harness owns the data directory and listen addresses. */
    if (!['--data-dir', '--https-listen', '--mqtt-listen', '--hostname'].includes(flags[i]))
      keep.push(flags[i], flags[i + 1]);
  }
  return keep;
}

test('README quick start and walkthrough run as written', async () => {
  const dpsd = await startDpsd('readme', makeRunFlags());
  const work = tempDir('readme-work.');
  try {
    fs.symlinkSync(path.dirname(binary('dpsctl')), path.join(work, 'build'));
    fs.mkdirSync(path.join(work, 'var'));
    fs.symlinkSync(path.join(dpsd.dir, 'data'), path.join(work, 'var', 'dev'));

    const quick = blocks(section('## Quick start', '## Walkthrough'), 'sh')
      .flatMap(commands).filter((c) => c.startsWith('curl'));
    assert.strictEqual(quick.length, 1, 'the quick start shows one curl check');
    const walk = blocks(section('### 1. Make a test PKI', '### Scale out on PostgreSQL'), 'sh')
      .flatMap(commands);
    assert.ok(walk.length >= 20, `walkthrough has its commands (${walk.length})`);

    /* One shell, so that `export` carries on; each command's status is reported. */
    const script = [...quick, ...walk].map((cmd, i) =>
      `{ ${cmd} ; } > out.${i} 2>&1; echo "$?" > rc.${i}`).join('\n');
    const run = spawnSync('bash', ['-c', script], { cwd: work, encoding: 'utf8', timeout: 300000 });
    assert.strictEqual(run.status, 0, run.stderr);
    const result = [...quick, ...walk].map((cmd, i) => ({
      cmd,
      rc: Number(fs.readFileSync(path.join(work, `rc.${i}`), 'utf8')),
      out: fs.readFileSync(path.join(work, `out.${i}`), 'utf8'),
    }));
    for (const r of result) {
      /* explain exits non-zero when the device would be refused, as the README says it is. */
      const refusedOnPurpose = /dpsctl explain/.test(r.cmd);
      if (refusedOnPurpose) {
        assert.notStrictEqual(r.rc, 0, `${r.cmd}\n${r.out}`);
        assert.match(r.out, /unauthorized/, r.cmd);
      } else {
        assert.strictEqual(r.rc, 0, `'${r.cmd}' exited ${r.rc}:\n${r.out}`);
      }
    }
    const find = (re) => result.find((r) => re.test(r.cmd));
    assert.match(find(/^curl/).out, /"status":\s*"ok"/);
    assert.match(find(/openssl verify/).out, /OK/);
    assert.match(find(/enrollment-group show --id line-3/).out, /CN=Contoso Line 3/);
    const registers = result.filter((r) => /dpsctl register/.test(r.cmd));
    assert.ok(registers.length >= 3, 'HTTPS, MQTT and CA-reference registrations');
    for (const r of registers) {
      assert.match(r.out, /assigned/, r.cmd);
      assert.match(r.out, /dev-hub\.local/, r.cmd);
    }
    assert.match(find(/registration history sensor-001/).out, /assigned/);
    assert.match(find(/ca list/).out, /contoso-root/);

    /* The Node.js snippet of step 2, with the SDK the interop tests install. */
    const [snippet] = blocks(section('### 2. Enroll a group of devices', '### 3.'), 'js');
    assert.ok(snippet, 'step 2 has a Node.js snippet');
    fs.writeFileSync(path.join(work, 'enroll.js'), snippet);
    const node = spawnSync(process.execPath, ['enroll.js'], {
      cwd: work, encoding: 'utf8', timeout: 60000,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: dpsd.ca,
        NODE_PATH: path.join(root, 'tests', 'node_modules') },
    });
    assert.strictEqual(node.status, 0, node.stderr);
    assert.match(node.stdout, /sha256Thumbprint/);
  } finally {
    const exit = await dpsd.stop();
    assert.deepStrictEqual(exit, { code: 0, signal: null }, dpsd.stderr());
  }
});
