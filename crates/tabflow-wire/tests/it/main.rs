//! Integration tests of tabflow-wire: the fuzz corpus replayed and random inputs through the
//! fuzz entry points, on the stable toolchain.

mod fuzz;
