// The message shapes every contender accepts, compiled once. The hand-rolled baselines validate with the
// same compiled checks as the plugin so the comparison measures the framework, not whether anyone validates.
import Type from 'typebox'
import { Compile } from 'typebox/compile'

export const schemas = {
  join: Type.Object({ room: Type.String() }),
  pub: Type.Object({ room: Type.String(), t: Type.Number(), body: Type.String() }),
  echo: Type.Object({ t: Type.Number() }),
  msg: Type.Object({ t: Type.Number(), body: Type.String() })
}

export const check = {
  join: Compile(schemas.join),
  pub: Compile(schemas.pub),
  echo: Compile(schemas.echo)
}
