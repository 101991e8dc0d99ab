//! The SQL of recalls outside the engine's transactions: rules, the views (with the register's
//! segregation predicate, `clients::visible_clients!`), and what a send job and the preview read.

use chrono::{DateTime, NaiveDate, Utc};

use super::engine::{PlanContext, RecallConn};
use super::model::{Recall, Rule, RuleRow, Step};
use crate::clients::{ClientScope, visible_clients};
use crate::ids::{
    ClientId, DepartmentId, OrganisationId, PatientId, RecallId, RecallRuleId, ServiceId, StaffId,
};
use crate::jobs::millis;
use crate::store::{Store, dispatch};
use crate::templates::Language;

/// A rule as checked for storing.
pub(crate) struct RuleInput<'a> {
    pub(crate) name: &'a str,
    pub(crate) department_id: Option<DepartmentId>,
    pub(crate) service_id: ServiceId,
    pub(crate) due_service_id: ServiceId,
    pub(crate) interval_count: i32,
    pub(crate) interval_unit: &'static str,
    pub(crate) offsets: String,
    pub(crate) channels: String,
    pub(crate) internal: bool,
    pub(crate) subject: Option<&'a str>,
    pub(crate) body: Option<&'a str>,
    pub(crate) active: bool,
}

macro_rules! rule_columns {
    () => {
        "select recall_rule_id, name, department_id, trigger_service_id, due_service_id, \
         interval_count, interval_unit, offsets, channels, internal, subject, body, active, \
         created_at, updated_at from recall_rule "
    };
}

macro_rules! recall_columns {
    () => {
        "select r.recall_id, r.client_id, c.name as client_name, r.patient_id, \
         case when p.is_client then c.name else p.name end as patient_name, \
         r.service_id, s.name as service_name, r.recall_rule_id as rule_id, rr.name as rule_name, \
         r.origin, r.internal, r.title, r.subject, r.body, r.due_on, r.basis_on, r.status, \
         r.closed_reason, r.closed_at, c.department_id, c.practitioner_id, r.created_by, \
         r.created_at \
         from recall r join client c on c.client_id = r.client_id \
         join patient p on p.patient_id = r.patient_id \
         left join service s on s.service_id = r.service_id \
         left join recall_rule rr on rr.recall_rule_id = r.recall_rule_id "
    };
}

/// Which recalls a view lists.
#[derive(Default)]
pub(crate) struct ListFilter {
    pub(crate) due_from: Option<NaiveDate>,
    pub(crate) due_to: Option<NaiveDate>,
    pub(crate) service_id: Option<ServiceId>,
    pub(crate) practitioner_id: Option<StaffId>,
    pub(crate) department_id: Option<DepartmentId>,
    /// `open`, `completed`, `cancelled` or `all`.
    pub(crate) status: &'static str,
    pub(crate) client_id: Option<ClientId>,
    pub(crate) patient_id: Option<PatientId>,
    /// Strictly after this (due date, id).
    pub(crate) after: Option<(NaiveDate, RecallId)>,
    pub(crate) limit: i64,
}

/// A pending step with what its sending decides on (the send job and the preview).
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct PendingRow {
    pub(crate) recall_step_id: crate::ids::RecallStepId,
    pub(crate) recall_id: RecallId,
    pub(crate) recall_status: String,
    pub(crate) service_id: Option<ServiceId>,
    pub(crate) service_name: Option<String>,
    pub(crate) rule_id: Option<RecallRuleId>,
    pub(crate) rule_name: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) patient_id: PatientId,
    pub(crate) patient_name: String,
    pub(crate) due_on: NaiveDate,
    pub(crate) deceased: bool,
    pub(crate) done_since: bool,
}

/// Whom a client's recalls go to.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct Recipient {
    pub(crate) client_id: ClientId,
    pub(crate) organisation_id: OrganisationId,
    pub(crate) name: String,
    pub(crate) email: Option<String>,
    #[sqlx(try_from = "String")]
    pub(crate) language: Language,
    pub(crate) department_id: Option<DepartmentId>,
    pub(crate) recall_opt_out: bool,
}

/// The organisation's name and contact line.
#[derive(sqlx::FromRow)]
pub(crate) struct Letterhead {
    pub(crate) name: String,
    contact_email: String,
    contact_phone: String,
    contact_website: String,
}

impl Letterhead {
    /// Phone, e-mail and website, those that are set.
    pub(crate) fn contact(&self) -> String {
        [
            &self.contact_phone,
            &self.contact_email,
            &self.contact_website,
        ]
        .into_iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
    }
}

impl Store {
    /// The rules of `organisation_id` by name.
    pub(crate) async fn recall_rules(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Vec<Rule>, sqlx::Error> {
        let rows = dispatch!(self, pool => {
            sqlx::query_as::<_, RuleRow>(concat!(
                rule_columns!(),
                "where organisation_id = $1 order by name, recall_rule_id"
            ))
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(RuleRow::into_rule).collect())
    }

    pub(crate) async fn recall_rule(
        &self,
        organisation_id: OrganisationId,
        id: RecallRuleId,
    ) -> Result<Option<Rule>, sqlx::Error> {
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, RuleRow>(concat!(
                rule_columns!(),
                "where organisation_id = $1 and recall_rule_id = $2"
            ))
            .bind(organisation_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(RuleRow::into_rule))
    }

    /// The active rules of `organisation_id` triggered by `service_id` that apply to a client of
    /// `department_id` (the organisation's rules and that department's), oldest first.
    pub(crate) async fn rules_triggered_by(
        &self,
        organisation_id: OrganisationId,
        service_id: ServiceId,
        department_id: Option<DepartmentId>,
    ) -> Result<Vec<Rule>, sqlx::Error> {
        let rows = dispatch!(self, pool => {
            sqlx::query_as::<_, RuleRow>(concat!(
                rule_columns!(),
                "where organisation_id = $1 and trigger_service_id = $2 and active \
                 and (department_id is null or department_id = $3) \
                 order by created_at, recall_rule_id"
            ))
            .bind(organisation_id)
            .bind(service_id)
            .bind(department_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(RuleRow::into_rule).collect())
    }

    pub(crate) async fn insert_recall_rule(
        &self,
        organisation_id: OrganisationId,
        r: &RuleInput<'_>,
        created_by: StaffId,
        now: DateTime<Utc>,
    ) -> Result<RecallRuleId, sqlx::Error> {
        let id = RecallRuleId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into recall_rule (recall_rule_id, organisation_id, department_id, name, \
                 trigger_service_id, due_service_id, interval_count, interval_unit, offsets, \
                 channels, internal, subject, body, active, created_by, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(r.department_id)
            .bind(r.name)
            .bind(r.service_id)
            .bind(r.due_service_id)
            .bind(r.interval_count)
            .bind(r.interval_unit)
            .bind(&r.offsets)
            .bind(&r.channels)
            .bind(r.internal)
            .bind(r.subject)
            .bind(r.body)
            .bind(r.active)
            .bind(created_by)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    /// Changes a rule and re-plans the pending steps of its open recalls, in one transaction.
    /// `None`: no such rule; else whether a send job was enqueued.
    pub(crate) async fn update_recall_rule(
        &self,
        organisation_id: OrganisationId,
        id: RecallRuleId,
        r: &RuleInput<'_>,
        plan: PlanContext,
    ) -> Result<Option<bool>, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "update recall_rule set department_id = $3, name = $4, trigger_service_id = $5, \
                 due_service_id = $6, interval_count = $7, interval_unit = $8, offsets = $9, \
                 channels = $10, internal = $11, subject = $12, body = $13, active = $14, \
                 updated_at = $15 where organisation_id = $1 and recall_rule_id = $2",
            )
            .bind(organisation_id)
            .bind(id)
            .bind(r.department_id)
            .bind(r.name)
            .bind(r.service_id)
            .bind(r.due_service_id)
            .bind(r.interval_count)
            .bind(r.interval_unit)
            .bind(&r.offsets)
            .bind(&r.channels)
            .bind(r.internal)
            .bind(r.subject)
            .bind(r.body)
            .bind(r.active)
            .bind(plan.now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(None);
            }
            let row = sqlx::query_as::<_, RuleRow>(concat!(
                rule_columns!(),
                "where recall_rule_id = $1"
            ))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let woke = tx.replan_rule(organisation_id, &row.into_rule(), plan).await?;
            tx.commit().await?;
            Ok(Some(woke))
        })
    }

    /// Deletes a rule; its recalls stay (without a rule: the built-in text). False: none.
    pub(crate) async fn delete_recall_rule(
        &self,
        organisation_id: OrganisationId,
        id: RecallRuleId,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query("delete from recall_rule where organisation_id = $1 and recall_rule_id = $2")
                .bind(organisation_id)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() > 0)
        })
    }

    /// One page of the recalls `scope` sees under `f`, by due date then id.
    pub(crate) async fn recalls(
        &self,
        scope: &ClientScope,
        f: &ListFilter,
    ) -> Result<Vec<Recall>, sqlx::Error> {
        let mut rows = dispatch!(self, pool => {
            sqlx::query_as::<_, Recall>(concat!(
                recall_columns!(),
                "where r.organisation_id = $1 and r.client_id in (select c.client_id ",
                visible_clients!(),
                ") and ($7 is null or r.due_on >= $7) and ($8 is null or r.due_on <= $8) \
                 and ($9 is null or r.service_id = $9) \
                 and ($10 is null or c.practitioner_id = $10) \
                 and ($11 is null or c.department_id = $11) \
                 and ($12 = 'all' or r.status = $12) \
                 and ($13 is null or r.client_id = $13) \
                 and ($14 is null or r.patient_id = $14) \
                 and ($15 is null or r.due_on > $15 or (r.due_on = $15 and r.recall_id > $16)) \
                 order by r.due_on, r.recall_id limit $17"
            ))
            .bind(scope.organisation_id)
            .bind(scope.role)
            .bind(scope.departments)
            .bind(scope.clients)
            .bind(scope.staff_id)
            .bind(scope.department_id)
            .bind(f.due_from)
            .bind(f.due_to)
            .bind(f.service_id)
            .bind(f.practitioner_id)
            .bind(f.department_id)
            .bind(f.status)
            .bind(f.client_id)
            .bind(f.patient_id)
            .bind(f.after.map(|a| a.0))
            .bind(f.after.map(|a| a.1))
            .bind(f.limit)
            .fetch_all(pool)
            .await
        })?;
        let ids: Vec<RecallId> = rows.iter().map(|r| r.id).collect();
        for s in self.recall_steps(&ids).await? {
            if let Some(r) = rows.iter_mut().find(|r| r.id == s.recall_id) {
                r.steps.push(s.into());
            }
        }
        Ok(rows)
    }

    /// One recall of `organisation_id`, whoever's client it is (callers then check the client).
    pub(crate) async fn recall_in_organisation(
        &self,
        organisation_id: OrganisationId,
        id: RecallId,
    ) -> Result<Option<Recall>, sqlx::Error> {
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, Recall>(concat!(
                recall_columns!(),
                "where r.organisation_id = $1 and r.recall_id = $2"
            ))
            .bind(organisation_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        let Some(mut row) = row else { return Ok(None) };
        row.steps = self
            .recall_steps(&[id])
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Some(row))
    }

    /// The recalls `ids` of `client_id` (others are left out), any order, without steps (the
    /// timeline).
    pub(crate) async fn recalls_by_id(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        ids: &[RecallId],
    ) -> Result<Vec<Recall>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (3..ids.len() + 3).map(|n| format!("${n}")).collect();
        let sql = format!(
            "{}where r.organisation_id = $1 and r.client_id = $2 and r.recall_id in ({})",
            recall_columns!(),
            placeholders.join(", ")
        );
        dispatch!(self, pool => {
            let mut q = sqlx::query_as::<_, Recall>(sqlx::AssertSqlSafe(sql))
                .bind(organisation_id)
                .bind(client_id);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })
    }

    async fn recall_steps(&self, ids: &[RecallId]) -> Result<Vec<Step>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "select recall_step_id, recall_id, offset_days, send_at, channel, status, reason, \
             mail_id, decided_at from recall_step where recall_id in ({}) \
             order by send_at, channel, recall_step_id",
            placeholders.join(", ")
        );
        dispatch!(self, pool => {
            let mut q = sqlx::query_as::<_, Step>(sqlx::AssertSqlSafe(sql));
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })
    }

    /// Sets a client's opt-out of care reminders; false when no such client.
    pub(crate) async fn set_recall_opt_out(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        opt_out: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "update client set recall_opt_out = $3, updated_at = $4 \
                 where organisation_id = $1 and client_id = $2",
            )
            .bind(organisation_id)
            .bind(client_id)
            .bind(opt_out)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() > 0)
        })
    }

    pub(crate) async fn recall_recipient(
        &self,
        client_id: ClientId,
    ) -> Result<Option<Recipient>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Recipient>(
                "select client_id, organisation_id, name, email, language, department_id, \
                 recall_opt_out from client where client_id = $1",
            )
            .bind(client_id)
            .fetch_optional(pool)
            .await
        })
    }

    pub(crate) async fn recall_letterhead(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Option<Letterhead>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Letterhead>(
                "select name, contact_email, contact_phone, contact_website from organisation \
                 where organisation_id = $1",
            )
            .bind(organisation_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// The pending steps of `client_id` at `send_at` (ms), with what deciding them needs.
    pub(crate) async fn pending_recall_steps(
        &self,
        client_id: ClientId,
        send_at: i64,
    ) -> Result<Vec<PendingRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, PendingRow>(
                "select st.recall_step_id, st.recall_id, r.status as recall_status, \
                 r.service_id, s.name as service_name, r.recall_rule_id as rule_id, \
                 rr.name as rule_name, r.title, \
                 coalesce(r.subject, rr.subject) as subject, coalesce(r.body, rr.body) as body, \
                 r.patient_id, case when p.is_client then c.name else p.name end as patient_name, \
                 r.due_on, p.deceased_on is not null as deceased, \
                 exists (select 1 from service_record sr where sr.patient_id = r.patient_id \
                         and sr.service_id = r.service_id and sr.created_at > r.created_at \
                         and (r.basis_on is null or sr.performed_on > r.basis_on)) \
                   as done_since \
                 from recall_step st join recall r on r.recall_id = st.recall_id \
                 join patient p on p.patient_id = r.patient_id \
                 join client c on c.client_id = r.client_id \
                 left join service s on s.service_id = r.service_id \
                 left join recall_rule rr on rr.recall_rule_id = r.recall_rule_id \
                 where st.client_id = $1 and st.send_at = $2 and st.status = 'pending' \
                 order by r.due_on, r.patient_id, st.recall_step_id",
            )
            .bind(client_id)
            .bind(send_at)
            .fetch_all(pool)
            .await
        })
    }

    /// Starts of the client's scheduled appointments from `now` on, earliest first.
    pub(crate) async fn scheduled_starts(
        &self,
        client_id: ClientId,
        now: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar(
                "select starts_at from appointment where client_id = $1 \
                 and status = 'scheduled' and starts_at >= $2 order by starts_at limit 50",
            )
            .bind(client_id)
            .bind(now)
            .fetch_all(pool)
            .await
        })
    }

    /// The distinct (client, instant) of the pending steps `scope` sees sending in
    /// `[from, to]`, earliest first, at most `limit`.
    pub(crate) async fn pending_sendings(
        &self,
        scope: &ClientScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(ClientId, i64)>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, (ClientId, i64)>(concat!(
                "select distinct st.client_id, st.send_at from recall_step st \
                 where st.organisation_id = $1 and st.status = 'pending' \
                 and st.send_at >= $7 and st.send_at <= $8 \
                 and st.client_id in (select c.client_id ",
                visible_clients!(),
                ") order by st.send_at, st.client_id limit $9"
            ))
            .bind(scope.organisation_id)
            .bind(scope.role)
            .bind(scope.departments)
            .bind(scope.clients)
            .bind(scope.staff_id)
            .bind(scope.department_id)
            .bind(millis(from))
            .bind(millis(to))
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }
}
