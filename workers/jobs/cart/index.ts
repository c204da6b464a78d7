/** The cart job type: cart sessions, abandonment timers, the cart model, alerts recorded and emailed once. */
import type { JobDefinition } from '../../runtime/job.js';
import { bundledModelPath } from '../../models/bundled.js';
import { Scorer } from '../../models/scorer.js';
import { AlertDispatcher, alertCounter, SmtpMailer, type CartAlert } from './alerts.js';
import { cartConfig, type AlertSettings, type CartSettings } from './config.js';
import { CART_FEATURES } from './features.js';
import { CartJob, type CartPartitionState } from './job.js';

export const cart: JobDefinition<CartPartitionState, CartAlert> = {
  config: cartConfig,
  loadModel: (path) => Scorer.load(path ?? bundledModelPath('cart'), CART_FEATURES),
  job: ({ config, model, state }) => new CartJob(model, config.cart as CartSettings, state),
  output: ({ config, sink, metrics, logger, credentials, holder }) => {
    const alerts = config.alerts as AlertSettings | undefined;
    const mailer = alerts ? new SmtpMailer(alerts.smtp, credentials.smtp) : undefined;
    return new AlertDispatcher(sink, mailer, alerts, holder, alertCounter(metrics), logger);
  },
  results: { score: 'cart_abandon_score', detail: 'cart_value', label: (v) => `cart ${v}`, scoreName: 'abandonment', topHeading: 'carts most likely abandoned', alerts: true },
};
