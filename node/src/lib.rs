//! learnchain node
