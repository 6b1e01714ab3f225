//! Emulator integration tests: real HTTP against an emulator on 127.0.0.1.

mod api;
mod faults;
mod flows;
mod fuzz;
mod safety;
mod util;
