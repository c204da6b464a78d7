import { Command } from 'commander';
import { CliError } from '../errors.js';

export function produceCommand(): Command {
  return new Command('produce')
    .description('Write generated user events into Kafka at a chosen rate')
    .action(() => {
      throw new CliError('produce is not available yet');
    });
}
