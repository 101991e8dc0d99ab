//! SQL of the template sets (migration 0014): `mail_template_set`, `mail_template` (per set,
//! kind and language) and `department_mail_template_set` (which set a department uses).

use chrono::{DateTime, Utc};

use super::defaults;
use super::model::{Language, Template, TemplateKind};
use crate::ids::{DepartmentId, MailTemplateSetId, OrganisationId};
use crate::store::{Store, dispatch};

/// A stored set.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SetRow {
    /// Id.
    pub set_id: MailTemplateSetId,
    /// Organisation.
    pub organisation_id: OrganisationId,
    /// Name (unique in the organisation).
    pub name: String,
    /// The organisation's default set.
    pub is_default: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed (the set or one of its templates).
    pub updated_at: DateTime<Utc>,
}

/// A stored template of a set.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TemplateRow {
    /// Kind (as stored).
    pub kind: String,
    /// Language (as stored).
    pub language: String,
    /// Subject.
    pub subject: String,
    /// HTML.
    pub html_body: String,
    /// Text.
    pub text_body: String,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl TemplateRow {
    /// The template.
    pub fn template(&self) -> Template {
        Template {
            subject: self.subject.clone(),
            html_body: self.html_body.clone(),
            text_body: self.text_body.clone(),
        }
    }
}

/// Result of assigning departments.
pub enum Assigned {
    /// Done.
    Ok,
    /// The set is not the organisation's.
    NoSet,
    /// A department is not the organisation's.
    NoDepartment,
}

impl Store {
    /// The template for a mail: the department's set, else the organisation's default set,
    /// else the built-in text.
    pub async fn effective_template(
        &self,
        organisation_id: OrganisationId,
        department_id: Option<DepartmentId>,
        kind: TemplateKind,
        language: Language,
    ) -> Result<Template, sqlx::Error> {
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, TemplateRow>(
                "select t.kind, t.language, t.subject, t.html_body, t.text_body, t.updated_at \
                 from mail_template t join mail_template_set s on s.set_id = t.set_id \
                 where s.organisation_id = $1 and t.kind = $3 and t.language = $4 \
                 and (s.is_default = $5 or s.set_id = (select d.set_id from \
                 department_mail_template_set d where d.department_id = $2)) \
                 order by case when s.is_default = $5 then 1 else 0 end limit 1",
            )
            .bind(organisation_id)
            .bind(department_id)
            .bind(kind.as_str())
            .bind(language.as_str())
            .bind(true)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map_or_else(|| defaults::builtin(kind, language), |r| r.template()))
    }

    /// The organisation's sets, by name.
    pub async fn template_sets(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Vec<SetRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, SetRow>(
                "select set_id, organisation_id, name, is_default, created_at, updated_at \
                 from mail_template_set where organisation_id = $1 order by name, set_id",
            )
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })
    }

    /// One of the organisation's sets.
    pub async fn template_set(
        &self,
        organisation_id: OrganisationId,
        set_id: MailTemplateSetId,
    ) -> Result<Option<SetRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, SetRow>(
                "select set_id, organisation_id, name, is_default, created_at, updated_at \
                 from mail_template_set where organisation_id = $1 and set_id = $2",
            )
            .bind(organisation_id)
            .bind(set_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// (department, set) of the organisation's assigned departments.
    pub async fn template_set_assignments(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Vec<(DepartmentId, MailTemplateSetId)>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, (DepartmentId, MailTemplateSetId)>(
                "select a.department_id, a.set_id from department_mail_template_set a \
                 join department d on d.department_id = a.department_id \
                 where d.organisation_id = $1 order by a.department_id",
            )
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })
    }

    /// The templates a set holds.
    pub async fn templates_of_set(
        &self,
        set_id: MailTemplateSetId,
    ) -> Result<Vec<TemplateRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, TemplateRow>(
                "select kind, language, subject, html_body, text_body, updated_at \
                 from mail_template where set_id = $1 order by kind, language",
            )
            .bind(set_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Creates a set (a new default replaces the old one). A taken name is a unique violation.
    pub async fn insert_template_set(
        &self,
        organisation_id: OrganisationId,
        name: &str,
        is_default: bool,
        now: DateTime<Utc>,
    ) -> Result<MailTemplateSetId, sqlx::Error> {
        let id = MailTemplateSetId::new();
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            if is_default {
                sqlx::query(
                    "update mail_template_set set is_default = $2, updated_at = $3 \
                     where organisation_id = $1 and is_default = $4",
                )
                .bind(organisation_id)
                .bind(false)
                .bind(now)
                .bind(true)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "insert into mail_template_set (set_id, organisation_id, name, is_default, \
                 created_at, updated_at) values ($1, $2, $3, $4, $5, $5)",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(name)
            .bind(is_default)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(id)
    }

    /// Renames a set and sets whether it is the default; `false` if it is not the
    /// organisation's.
    pub async fn update_template_set(
        &self,
        organisation_id: OrganisationId,
        set_id: MailTemplateSetId,
        name: &str,
        is_default: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            if is_default {
                sqlx::query(
                    "update mail_template_set set is_default = $3, updated_at = $4 \
                     where organisation_id = $1 and set_id <> $2 and is_default = $5",
                )
                .bind(organisation_id)
                .bind(set_id)
                .bind(false)
                .bind(now)
                .bind(true)
                .execute(&mut *tx)
                .await?;
            }
            let done = sqlx::query(
                "update mail_template_set set name = $3, is_default = $4, updated_at = $5 \
                 where organisation_id = $1 and set_id = $2",
            )
            .bind(organisation_id)
            .bind(set_id)
            .bind(name)
            .bind(is_default)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 1 {
                tx.commit().await?;
            }
            Ok(done == 1)
        })
    }

    /// Deletes a set with its templates and assignments; `false` if it is not the
    /// organisation's.
    pub async fn delete_template_set(
        &self,
        organisation_id: OrganisationId,
        set_id: MailTemplateSetId,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query("delete from mail_template_set where organisation_id = $1 and set_id = $2")
                .bind(organisation_id)
                .bind(set_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() == 1)
        })
    }

    /// Stores (inserts or replaces) one template of the organisation's set; `false` if the set
    /// is not the organisation's.
    pub async fn put_template(
        &self,
        organisation_id: OrganisationId,
        set_id: MailTemplateSetId,
        kind: TemplateKind,
        language: Language,
        template: &Template,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let touched = sqlx::query(
                "update mail_template_set set updated_at = $3 \
                 where organisation_id = $1 and set_id = $2",
            )
            .bind(organisation_id)
            .bind(set_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if touched != 1 {
                return Ok(false);
            }
            sqlx::query(
                "insert into mail_template (set_id, kind, language, subject, html_body, \
                 text_body, updated_at) values ($1, $2, $3, $4, $5, $6, $7) \
                 on conflict (set_id, kind, language) do update set subject = excluded.subject, \
                 html_body = excluded.html_body, text_body = excluded.text_body, \
                 updated_at = excluded.updated_at",
            )
            .bind(set_id)
            .bind(kind.as_str())
            .bind(language.as_str())
            .bind(&template.subject)
            .bind(&template.html_body)
            .bind(&template.text_body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Removes one template from the organisation's set (back to the fallback); `false` if the
    /// set is not the organisation's.
    pub async fn delete_template(
        &self,
        organisation_id: OrganisationId,
        set_id: MailTemplateSetId,
        kind: TemplateKind,
        language: Language,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let touched = sqlx::query(
                "select set_id from mail_template_set where organisation_id = $1 and set_id = $2",
            )
            .bind(organisation_id)
            .bind(set_id)
            .fetch_optional(&mut *tx)
            .await?;
            if touched.is_none() {
                return Ok(false);
            }
            sqlx::query(
                "delete from mail_template where set_id = $1 and kind = $2 and language = $3",
            )
            .bind(set_id)
            .bind(kind.as_str())
            .bind(language.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Makes `departments` exactly the departments that use the set (in one transaction;
    /// nothing changes if the set or a department is not the organisation's).
    pub async fn assign_template_set(
        &self,
        organisation_id: OrganisationId,
        set_id: MailTemplateSetId,
        departments: &[DepartmentId],
    ) -> Result<Assigned, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let set = sqlx::query(
                "select set_id from mail_template_set where organisation_id = $1 and set_id = $2",
            )
            .bind(organisation_id)
            .bind(set_id)
            .fetch_optional(&mut *tx)
            .await?;
            if set.is_none() {
                return Ok(Assigned::NoSet);
            }
            sqlx::query("delete from department_mail_template_set where set_id = $1")
                .bind(set_id)
                .execute(&mut *tx)
                .await?;
            for department in departments {
                let own = sqlx::query(
                    "select department_id from department \
                     where organisation_id = $1 and department_id = $2",
                )
                .bind(organisation_id)
                .bind(department)
                .fetch_optional(&mut *tx)
                .await?;
                if own.is_none() {
                    return Ok(Assigned::NoDepartment);
                }
                sqlx::query(
                    "insert into department_mail_template_set (department_id, set_id) \
                     values ($1, $2) on conflict (department_id) do update \
                     set set_id = excluded.set_id",
                )
                .bind(department)
                .bind(set_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(Assigned::Ok)
        })
    }
}
