mod accuracy;
mod errors;
mod support;
