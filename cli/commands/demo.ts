import { Command } from 'commander';
import { CliError } from '../errors.js';

export function demoCommand(): Command {
  return new Command('demo')
    .description('Run the embedded default: generated events scored in-process, no Kafka, Redis or cluster needed')
    .action(() => {
      throw new CliError('demo is not available yet');
    });
}
