//! Adapters against local HTTP servers speaking the real OpenAI Chat Completions and
//! Anthropic Messages wire formats.

mod anthropic;
mod errors;
mod openai;
mod server;
