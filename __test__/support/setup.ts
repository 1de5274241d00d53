// vitest setup: tfjs prints an "install our node backend" banner the first time its cpu backend
// is used in Node — advice for apps, noise in test output. Only that message is dropped; tfjs'
// own switches for it (IS_TEST, PROD) would also change what tfjs checks, so they stay off.
const BANNER = 'looks like you are running TensorFlow.js in Node.js'
const warn = console.warn.bind(console)
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].includes(BANNER)) return
  warn(...args)
}
