// A loopback npm registry for the release rehearsal: it serves the packed normclip tarballs as if
// they were published, so `npm install normclip` in a new folder resolves the main package, reads
// its optionalDependencies and picks the platform package exactly as it would from npmjs; every
// other request (tfjs, typescript) goes on to the configured upstream registry.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { basename } from 'node:path'
import { Readable } from 'node:stream'

export async function startRegistry(tarballs, upstream) {
  const local = new Map() // package name -> { manifest, file, integrity, shasum }
  for (const file of tarballs) {
    const manifest = JSON.parse(execFileSync('tar', ['-xzOf', file, 'package/package.json'], { encoding: 'utf8' }))
    const bytes = readFileSync(file)
    local.set(manifest.name, {
      manifest,
      file,
      integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
      shasum: createHash('sha1').update(bytes).digest('hex'),
    })
  }
  const upstreamBase = upstream.replace(/\/+$/, '')
  const requests = { local: 0, upstream: 0 }
  let base = ''

  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url, 'http://x').pathname)
      const tarball = /^\/(.+)\/-\/([^/]+\.tgz)$/.exec(path)
      const name = tarball ? tarball[1] : path.slice(1)
      const pkg = local.get(name)
      if (pkg && tarball) {
        if (tarball[2] !== basename(pkg.file)) return void res.writeHead(404).end()
        requests.local++
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(pkg.file))
        return
      }
      if (pkg && req.method === 'GET') {
        requests.local++
        const { manifest } = pkg
        const version = {
          ...manifest,
          _id: `${manifest.name}@${manifest.version}`,
          dist: { tarball: `${base}/${manifest.name}/-/${basename(pkg.file)}`, integrity: pkg.integrity, shasum: pkg.shasum },
        }
        const doc = { _id: manifest.name, name: manifest.name, 'dist-tags': { latest: manifest.version }, versions: { [manifest.version]: version } }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc))
        return
      }
      if (local.has(name.split('/-/')[0])) return void res.writeHead(404).end()
      requests.upstream++
      const headers = {}
      for (const h of ['accept', 'npm-command', 'user-agent']) if (req.headers[h]) headers[h] = req.headers[h]
      const answer = await fetch(upstreamBase + req.url, { method: req.method === 'HEAD' ? 'HEAD' : 'GET', headers, redirect: 'follow' })
      // fetch has decoded any gzip: pass on the type, never the encoding or length.
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' })
      if (answer.body) Readable.fromWeb(answer.body).pipe(res)
      else res.end()
    } catch (error) {
      if (!res.headersSent) res.writeHead(502)
      res.end(String(error))
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${server.address().port}`
  return { url: `${base}/`, requests, close: () => new Promise((resolve) => server.close(resolve)) }
}

// Run as its own process (the rehearsal's npm calls are synchronous and would block a server in
// its own event loop): `node registry.mjs UPSTREAM TARBALL...` prints `{"url": ...}` once ready,
// and the request counts when it gets SIGTERM.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [upstream, ...tarballs] = process.argv.slice(2)
  const registry = await startRegistry(tarballs, upstream)
  console.log(JSON.stringify({ url: registry.url }))
  process.on('SIGTERM', async () => {
    await registry.close()
    console.log(JSON.stringify(registry.requests))
    process.exit(0)
  })
}
