export * from './types.js';
export { parseEvent } from './validate.js';
export { toWire } from './wire.js';
export { EventGenerator, DEFAULT_START, type GeneratorOptions } from './generator.js';
