//! The therapeutic domain (docs/domain.md): crisis detection over
//! normalised text (disguises undone first: `unmask`), the crisis resources offered for each kind of crisis,
//! the exercise catalogue, and the recommendations feedback leads to. Pure
//! logic and data: no actors, no I/O.

pub mod crisis;
pub mod exercises;
pub mod language;
pub mod recommendations;
pub mod resources;
pub mod text;
pub mod unmask;
