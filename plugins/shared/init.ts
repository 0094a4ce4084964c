// The init hooks of a plugin whose only start-up work is the process's Redis client (opened in the master, or in
// each worker under cluster mode, never at load). Re-exported by such plugins:
//   export { hook_init_master, hook_init_child } from '../shared/init'
import { getRedis, type Next, type Plugin } from './haraka'

export function hook_init_master(this: Plugin, next: Next) {
  getRedis(this)
  next()
}

export function hook_init_child(this: Plugin, next: Next) {
  getRedis(this)
  next()
}
