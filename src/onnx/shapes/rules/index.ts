// Registers every shape rule (import for its side effect).
import './tensor.js';
import './math.js';
import './nn.js';
