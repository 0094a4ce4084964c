#!/usr/bin/env node
// Entry point of the `posta` CLI; the code is TypeScript compiled to dist/ by `npm run build`.
const path = require('node:path')
const fs = require('node:fs')
const entry = path.join(__dirname, '..', 'dist', 'cli', 'posta.js')
if (!fs.existsSync(entry)) {
  process.stderr.write('posta: not built yet: run "npm run build" (or "npm start") in the project directory first\n')
  process.exit(1)
}
const { main } = require(entry)
const { InputError } = require(path.join(__dirname, '..', 'dist', 'lib', 'errors.js'))
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`posta: ${err.message}\n`)
    process.exit(err instanceof InputError ? 2 : 1)
  },
)
