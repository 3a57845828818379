//! The store's enums, each with its own text: what a column holds and what
//! the audit trail records. They are not the wire's enums (`crate::types`):
//! the HTTP edge converts (`From`, in `views.rs`), so a wire rename changes
//! neither the database nor the audit trail, and a stored label is read
//! back by [`parse`](JobStatus::parse) alike on both engines.

/// An enum kept as text: its variants and the text of each, written once.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every variant.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// Its text in the database and the audit trail.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }

            /// The variant whose text is `text`.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum!(
    /// A CPU architecture.
    Architecture {
        X86_64 = "x86_64",
        Aarch64 = "aarch64",
    }
);

stored_enum!(
    /// An operating system.
    OperatingSystem {
        Linux = "linux",
        Macos = "macos",
        Windows = "windows",
    }
);

stored_enum!(
    /// How a job is isolated on its runner.
    Sandbox {
        Firecracker = "firecracker",
    }
);

stored_enum!(
    /// Where a job is in its life.
    JobStatus {
        Pending = "pending",
        Claimed = "claimed",
        Running = "running",
        Completed = "completed",
        /// Completed, and its output is its report's results.
        Processed = "processed",
        Failed = "failed",
        Canceled = "canceled",
    }
);

impl JobStatus {
    /// Whether the job has ended (completed, processed, failed or
    /// canceled).
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Processed | Self::Failed | Self::Canceled
        )
    }
}

stored_enum!(
    /// Who may see a project (kept and shown; this server has no public
    /// pages, so it changes nothing else).
    Visibility {
        Public = "public",
        Private = "private",
    }
);

stored_enum!(
    /// What a project's named things are: a report's branch and testbed, a
    /// result's benchmark and measure.
    NameKind {
        Branch = "branch",
        Testbed = "testbed",
        Benchmark = "benchmark",
        Measure = "measure",
    }
);

stored_enum!(
    /// What a runner is doing: computed from its channel and its jobs.
    RunnerStatus {
        Offline = "offline",
        Idle = "idle",
        Busy = "busy",
    }
);

stored_enum!(
    /// What an audit row says was done.
    AuditAction {
        RunnerCreate = "runner.create",
        RunnerUpdate = "runner.update",
        RunnerKeyRotate = "runner.key.rotate",
        RunnerSpecAdd = "runner.spec.add",
        RunnerSpecRemove = "runner.spec.remove",
        SpecCreate = "spec.create",
        SpecUpdate = "spec.update",
        SpecDelete = "spec.delete",
        UserCreate = "user.create",
        UserPromote = "user.promote",
        TokenCreate = "token.create",
        TokenRevoke = "token.revoke",
        KeyRotate = "key.rotate",
        RegistryKeyRotate = "registry.key.rotate",
        RegistryKeyRetire = "registry.key.retire",
        JobCreate = "job.create",
        JobCancel = "job.cancel",
        ProjectCreate = "project.create",
        ProjectUpdate = "project.update",
        ProjectDelete = "project.delete",
        ProjectKeyCreate = "project.key.create",
        ProjectKeyUpdate = "project.key.update",
        ProjectKeyRevoke = "project.key.revoke",
        UserKeyCreate = "user.key.create",
        UserKeyUpdate = "user.key.update",
        UserKeyRevoke = "user.key.revoke",
        RunCreate = "run.create",
    }
);

impl AuditAction {
    /// Whether the action's target is a runner.
    pub fn is_about_a_runner(self) -> bool {
        matches!(
            self,
            Self::RunnerCreate
                | Self::RunnerUpdate
                | Self::RunnerKeyRotate
                | Self::RunnerSpecAdd
                | Self::RunnerSpecRemove
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each text reads back as its variant, and no two variants share one.
    #[test]
    fn every_text_reads_back() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            text: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            let mut seen = std::collections::HashSet::new();
            for &v in all {
                assert_eq!(parse(text(v)), Some(v));
                assert!(seen.insert(text(v)), "{v:?}");
            }
            assert_eq!(parse(""), None);
        }
        check(Architecture::ALL, Architecture::as_str, Architecture::parse);
        check(
            OperatingSystem::ALL,
            OperatingSystem::as_str,
            OperatingSystem::parse,
        );
        check(Sandbox::ALL, Sandbox::as_str, Sandbox::parse);
        check(JobStatus::ALL, JobStatus::as_str, JobStatus::parse);
        check(RunnerStatus::ALL, RunnerStatus::as_str, RunnerStatus::parse);
        check(Visibility::ALL, Visibility::as_str, Visibility::parse);
        check(NameKind::ALL, NameKind::as_str, NameKind::parse);
        check(AuditAction::ALL, AuditAction::as_str, AuditAction::parse);
    }
}
