// Delivery policies (issue 14 item 5): how an emit reaches a member whose
// socket is behind. `reliable` (the default) queues it; `volatile` skips it;
// `latest` keeps only the newest message per key for that member (lib/conflation.ts).
// A route declares a policy per emit type; it is checked here once, when the
// route is declared, and merged into the app-wide table that `app.realtime.to`
// reads (it knows no route). Per message, a policy is one Map look-up.
import { FRT_ERR_EMIT_INVALID, FRT_ERR_ROUTE_DELIVERY_CONFLICT, FRT_ERR_ROUTE_INVALID } from './errors.js'

/** A latest message's key function, as the route declared it. */
export type KeyOf = (data: unknown) => unknown

/** A declared policy: false reliable, true volatile, a function latest (by the key it returns). */
export type Policy = boolean | KeyOf

/**
 * One message's delivery: false reliable, true volatile, a string latest, the message's conflation key
 * (its type and the policy's key, see latestKey). A boolean, so that the callers that only knew volatile
 * pass what they passed before.
 */
export type Delivery = boolean | string

/** What a sender asks of its route (or of the app-wide table): the delivery of one message. */
export interface DeliveryPolicies {
  delivery (type: string, data: unknown): Delivery
}

/**
 * The conflation key of a message: its type and its key, unambiguous whatever either holds (the type's
 * length first). Per member it is prefixed with the room (lib/rooms.ts), whose name has no space.
 */
export function latestKey (type: string, key: string): string {
  return type.length + ':' + type + key
}

/** The delivery of one message under `policy`; throws when a latest key function returns no string. */
export function deliveryOf (policy: Policy | undefined, type: string, data: unknown): Delivery {
  if (typeof policy !== 'function') return policy === true
  const key = policy(data)
  if (typeof key !== 'string') throw new FRT_ERR_EMIT_INVALID(type, `the "delivery" latest key must be a string, got ${typeof key}`)
  return latestKey(type, key)
}

/** Checks a route's `delivery` against its emits; returns the declared policies by type. */
export function compileDelivery (path: string, delivery: unknown, emits: ReadonlySet<string>): ReadonlyMap<string, Policy> {
  const policies = new Map<string, Policy>()
  if (delivery === undefined) return policies
  if (typeof delivery !== 'object' || delivery === null) {
    throw new FRT_ERR_ROUTE_INVALID(path, '"delivery" must be an object of emit type to policy')
  }
  for (const [type, policy] of Object.entries(delivery)) {
    if (!emits.has(type)) throw new FRT_ERR_ROUTE_INVALID(path, `"delivery.${type}" names no declared emit`)
    if (policy === 'reliable' || policy === 'volatile') {
      policies.set(type, policy === 'volatile')
    } else if (typeof policy === 'object' && policy !== null && typeof (policy as { latest?: unknown }).latest === 'function') {
      policies.set(type, (policy as { latest: KeyOf }).latest)
    } else {
      throw new FRT_ERR_ROUTE_INVALID(path, `"delivery.${type}" must be 'reliable', 'volatile' or { latest: (data) => string }`)
    }
  }
  return policies
}

/**
 * The app-wide policies, for sends that know no route (`app.realtime.to(room)`): a type's policy when every
 * route that declares one for it declares the same (for latest, the same key function), else a coded error
 * when the second route is declared. Types no route declares are reliable.
 */
export class Deliveries implements DeliveryPolicies {
  readonly #policies = new Map<string, Policy>()
  readonly #declaredBy = new Map<string, string>()

  declare (path: string, policies: ReadonlyMap<string, Policy>): void {
    for (const [type, policy] of policies) {
      const known = this.#policies.get(type)
      if (known !== undefined && known !== policy) {
        throw new FRT_ERR_ROUTE_DELIVERY_CONFLICT(path, type, this.#declaredBy.get(type))
      }
    }
    for (const [type, policy] of policies) {
      if (this.#policies.has(type)) continue
      this.#policies.set(type, policy)
      this.#declaredBy.set(type, path)
    }
  }

  delivery (type: string, data: unknown): Delivery {
    return deliveryOf(this.#policies.get(type), type, data)
  }
}
