import { MemoryQueue } from '../../src/core/queue/memory.js';
import { queueContract } from '../contract/queue.contract.js';

queueContract('memory', (options) => new MemoryQueue(options));
