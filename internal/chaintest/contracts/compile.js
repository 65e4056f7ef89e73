// compile.js turns Token.sol into Token.json ({"abi": [...], "bytecode": "0x..."}),
// the artifact gen.go embeds. It is run by `go generate` after `npm ci`, so the
// compiler is the exact solc pinned in package-lock.json, and the output is the
// same bytes on every machine: Go tests read the committed Token.json and never
// need Node.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const source = 'Token.sol';
const contract = 'Token';

const input = {
  language: 'Solidity',
  sources: {
    [source]: { content: fs.readFileSync(path.join(__dirname, source), 'utf8') },
  },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // Pinned rather than left to the compiler's default, which moves with each
    // solc release; paris is old enough that every fork the simulated chain
    // enables can run it (no PUSH0 or transient storage needed).
    evmVersion: 'paris',
    outputSelection: { [source]: { [contract]: ['abi', 'evm.bytecode.object'] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));

let failed = false;
for (const msg of output.errors || []) {
  process.stderr.write(msg.formattedMessage || msg.message);
  if (msg.severity === 'error') failed = true;
}
if (failed) {
  process.stderr.write(`solc ${solc.version()}: compiling ${source} failed\n`);
  process.exit(1);
}

const compiled = output.contracts[source][contract];
const artifact = {
  abi: compiled.abi,
  bytecode: '0x' + compiled.evm.bytecode.object,
};
fs.writeFileSync(path.join(__dirname, 'Token.json'), JSON.stringify(artifact, null, 2) + '\n');
process.stdout.write(`solc ${solc.version()}: wrote Token.json\n`);
