export { Scorer, ModelMismatchError } from './scorer.js';
export { bundledModelPath } from './bundled.js';
