export * from './churn.js';
export * from './cart.js';
