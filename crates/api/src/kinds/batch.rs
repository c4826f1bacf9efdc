//! batch/v1 kinds.

use k8s_openapi::api::batch::v1::{CronJob, Job};

use crate::strategy::{Typed, no_defaults, no_validation};

pub(crate) static JOB: Typed<Job> = Typed::new(no_defaults, no_validation);
pub(crate) static CRON_JOB: Typed<CronJob> = Typed::new(no_defaults, no_validation);
