import type { FastifyInstance } from 'fastify'
import type { RouteDefinition, SchemaMap } from './route.js'

/** Counters since the plugin was registered. */
export interface RealtimeStats {
  /** Open connections now. */
  connections: number
  /** Frames received. */
  messagesIn: number
  /** Frames sent (events, acks, errors, pongs). */
  messagesOut: number
  /** Invalid frames (bad JSON, bad envelope, unknown type, schema violation). */
  protocolErrors: number
  /** Handlers (and onOpen/onClose hooks) that threw or rejected. */
  handlerErrors: number
}

/** `app.realtime`: declares routes when called, and carries the plugin's API. */
export interface RealtimeDecorator {
  /** Declares a real-time route on this (encapsulated) instance; returns the instance. */
  <In extends SchemaMap, Emits extends SchemaMap = {}>(
    this: FastifyInstance, path: string, definition: RouteDefinition<In, Emits>): FastifyInstance
  /** A snapshot of the counters. */
  stats (): RealtimeStats
}

declare module 'fastify' {
  interface FastifyInstance {
    realtime: RealtimeDecorator
  }
}
