//! `bencher project key ...` and `bencher user key ...`: one command line
//! for both kinds of key, worded for each as Bencher v0.6.12 words it.

use std::marker::PhantomData;

use clap::{Args, Subcommand, ValueEnum};
use runners_sdk::types::{ResourceId, ResourceName};

use super::{CliPagination, parse_name, parse_ref, parse_uuid};

/// Whose keys a `key` command manages (a project's or a user's): the
/// words of its help, and its list's sort keys.
pub trait CliKeyOwner: Send + Sync + 'static {
    /// The sort keys of its key list.
    type Sort: ValueEnum + Clone + Copy + std::fmt::Debug + Send + Sync + 'static;
    /// The owner's positional argument: `PROJECT`, `USER`.
    const OWNER: &'static str;
    /// Its help: `Project slug or UUID`.
    const OWNER_HELP: &'static str;
    /// The help of the key's UUID argument.
    const UUID_HELP: &'static str;
    /// Each subcommand's help, in the order of [`CliKey`].
    const ABOUT: [&'static str; 5];
}

/// The keys of a project (`bencher_run_` keys).
#[derive(Debug)]
pub struct CliProjectKeys;

/// The keys of a user (`bencher_user_` keys).
#[derive(Debug)]
pub struct CliUserKeys;

impl CliKeyOwner for CliProjectKeys {
    type Sort = CliProjectKeysSort;
    const OWNER: &'static str = "PROJECT";
    const OWNER_HELP: &'static str = "Project slug or UUID";
    const UUID_HELP: &'static str = "Project key UUID";
    const ABOUT: [&'static str; 5] = [
        "List project keys",
        "Create a project key",
        "View a project key",
        "Update a project key",
        "Revoke a project key",
    ];
}

impl CliKeyOwner for CliUserKeys {
    type Sort = CliUserKeysSort;
    const OWNER: &'static str = "USER";
    const OWNER_HELP: &'static str = "User slug or UUID";
    const UUID_HELP: &'static str = "Key UUID";
    const ABOUT: [&'static str; 5] = [
        "List user API keys",
        "Create a user API key",
        "View a user API key",
        "Update a user API key",
        "Revoke a user API key",
    ];
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliProjectKeysSort {
    /// Name of the project key
    Name,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliUserKeysSort {
    /// Name of the API key
    Name,
}

#[derive(Subcommand, Debug)]
pub enum CliUser {
    /// Manage user API keys
    #[clap(subcommand)]
    Key(CliKey<CliUserKeys>),
}

/// `key list|create|view|update|revoke` of `O`'s keys.
#[derive(Subcommand, Debug)]
pub enum CliKey<O: CliKeyOwner> {
    #[clap(alias = "ls", about = O::ABOUT[0])]
    List(CliKeyList<O>),
    #[clap(alias = "add", about = O::ABOUT[1])]
    Create(CliKeyCreate<O>),
    #[clap(alias = "get", about = O::ABOUT[2])]
    View(CliKeyRef<O>),
    #[clap(alias = "edit", about = O::ABOUT[3])]
    Update(CliKeyUpdate<O>),
    #[clap(alias = "rm", about = O::ABOUT[4])]
    Revoke(CliKeyRef<O>),
}

/// The owner of the keys: a project's or a user's slug or UUID.
#[derive(Args, Debug)]
pub struct CliOwner<O: CliKeyOwner> {
    #[clap(value_name = O::OWNER, help = O::OWNER_HELP, value_parser = parse_ref)]
    pub owner: ResourceId,

    #[clap(skip)]
    _kind: PhantomData<O>,
}

#[derive(Args, Debug)]
pub struct CliKeyList<O: CliKeyOwner> {
    #[clap(flatten)]
    pub owner: CliOwner<O>,

    /// Key name
    #[clap(long)]
    pub name: Option<String>,

    /// Key search string
    #[clap(long, value_name = "QUERY")]
    pub search: Option<String>,

    /// Show only revoked keys instead of active ones
    #[clap(long)]
    pub revoked: bool,

    #[clap(flatten)]
    pub pagination: CliPagination<O::Sort>,
}

#[derive(Args, Debug)]
pub struct CliKeyCreate<O: CliKeyOwner> {
    #[clap(flatten)]
    pub owner: CliOwner<O>,

    /// Key name
    #[clap(long, value_parser = parse_name)]
    pub name: ResourceName,

    /// Time to live (seconds): 1 to 4294967295
    #[clap(long)]
    pub ttl: Option<std::num::NonZeroU32>,
}

/// A key: its owner and its UUID.
#[derive(Args, Debug)]
pub struct CliKeyRef<O: CliKeyOwner> {
    #[clap(flatten)]
    pub owner: CliOwner<O>,

    #[clap(help = O::UUID_HELP, value_parser = parse_key_uuid)]
    pub uuid: String,
}

#[derive(Args, Debug)]
pub struct CliKeyUpdate<O: CliKeyOwner> {
    #[clap(flatten)]
    pub key: CliKeyRef<O>,

    /// Key name
    #[clap(long, value_parser = parse_name)]
    pub name: Option<ResourceName>,
}

fn parse_key_uuid(value: &str) -> Result<String, String> {
    parse_uuid(
        value,
        "a key is named by its UUID (`key list` shows them), never by the key itself",
    )
}
