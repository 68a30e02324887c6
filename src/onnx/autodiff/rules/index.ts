// Loads every gradient rule family (each module registers its ops on import).
import './elementwise.js';
import './matmul.js';
import './reduce.js';
import './identity.js';
import './unary.js';
import './activation.js';
import './transpose.js';
import './reshape.js';
import './squeeze.js';
import './expand.js';
import './where.js';
import './gemm.js';
import './softmax.js';
import './concat.js';
import './split.js';
import './norm.js';
import './pow.js';
