//! HTTP tests of the clinic API through a real server and client. Every test is written once and
//! runs on SQLite (always) and PostgreSQL (when `TEST_PG_URL` is set; each test gets a fresh
//! database that is dropped afterwards).

#[path = "api/admin.rs"]
mod admin;
#[path = "api/announcements.rs"]
mod announcements;
#[path = "api/appointment_mail.rs"]
mod appointment_mail;
#[path = "api/appointments.rs"]
mod appointments;
#[path = "api/auth.rs"]
mod auth;
#[path = "api/chat.rs"]
mod chat;
#[path = "api/external.rs"]
mod external;
#[path = "api/guests.rs"]
mod guests;
#[path = "api/ice.rs"]
mod ice;
#[path = "api/invitations.rs"]
mod invitations;
#[path = "api/jobs.rs"]
mod jobs;
#[path = "api/login_limits.rs"]
mod login_limits;
#[path = "api/logs.rs"]
mod logs;
#[path = "api/mail.rs"]
mod mail;
#[path = "api/mail_ops.rs"]
mod mail_ops;
#[path = "api/misc.rs"]
mod misc;
#[path = "api/recalls.rs"]
mod recalls;
#[path = "api/records.rs"]
mod records;
#[path = "api/scheduling.rs"]
mod scheduling;
#[path = "api/settings.rs"]
mod settings;
#[path = "api/staff_mail.rs"]
mod staff_mail;
#[path = "api/support.rs"]
mod support;
#[path = "api/templates.rs"]
mod templates;
#[path = "api/walkin.rs"]
mod walkin;

// One `#[tokio::test]` per backend for each listed `async fn(Backend)`: `sqlite::<name>` and
// `postgres::<name>` (the latter runs when `TEST_PG_URL` is set).
use consultroom_testkit::backend_tests;

backend_tests! {
    appointment_mail::booking_rescheduling_and_cancelling_mail_every_participant,
    appointment_mail::reminders_go_once_at_the_local_time_and_never_for_a_cancelled_appointment,
    appointment_mail::a_client_address_the_outbox_refuses_refuses_the_booking,
    appointment_mail::a_new_client_is_created_with_its_booking_or_not_at_all,
    appointment_mail::a_guest_added_later_gets_their_own_invitation_mail,
    jobs::claim_complete_and_a_second_claimer_gets_nothing,
    jobs::an_expired_lease_is_claimed_again_and_the_old_owner_is_ignored,
    jobs::a_claim_takes_the_earlier_of_a_due_job_and_an_expired_lease,
    jobs::a_unique_key_is_stored_once,
    jobs::enqueue_commits_and_rolls_back_with_the_caller,
    jobs::the_worker_retries_on_the_backoff_schedule_then_fails,
    jobs::the_worker_wakes_when_the_next_job_falls_due,
    jobs::concurrent_claimers_never_take_the_same_job,
    mail::the_received_message_has_both_parts_the_calendar_and_its_message_id,
    mail::a_refused_connection_is_retried_until_the_server_is_up,
    mail::a_4xx_reply_is_retried_then_delivered,
    mail::a_5xx_at_rcpt_fails_is_not_retried_and_is_shown_to_the_admin,
    mail::do_not_send_emails_holds_the_mail,
    mail::enqueue_shares_the_callers_transaction,
    mail::the_mail_api_by_role_with_no_server_configured,
    mail_ops::a_failed_mail_is_acknowledged_and_test_mails_are_limited,
    mail_ops::a_clients_communication_history_follows_the_register,
    mail_ops::forgot_password_answers_the_same_and_issues_for_the_active_only,
    mail_ops::forgot_password_is_limited_per_address_and_per_source,
    staff_mail::inviting_staff_records_one_invitation_mail_with_the_link,
    staff_mail::a_new_link_records_a_password_reset_mail,
    staff_mail::set_password_mails_follow_the_staff_language,
    staff_mail::forgot_password_for_an_unknown_address_records_nothing,
    staff_mail::an_address_the_outbox_refuses_leaves_no_half_change,
    staff_mail::an_emailed_invitation_link_works_once_and_the_staff_member_logs_in,
    admin::staff_lists_and_invitations_follow_roles,
    admin::roles_departments_deactivation_and_the_last_admin,
    admin::set_password_links_work_once_before_expiry,
    admin::organisation_profile_and_logo,
    admin::own_profile_photo_and_password_change,
    admin::own_language_is_null_until_chosen,
    admin::first_run_creates_an_organisation_or_nothing,
    templates::template_sets_by_role_and_organisation,
    templates::the_preview_fills_in_sample_data_escaped,
    templates::a_composed_invitation_arrives_with_its_calendar,
    auth::login_sets_session_and_me_returns_profile,
    auth::session_state_is_always_200,
    auth::wrong_password_and_unknown_email_get_identical_401,
    auth::session_cookie_flags_on_http,
    auth::session_cookie_is_secure_on_https,
    auth::logout_revokes_the_session_server_side,
    auth::idle_timeout_slides_and_expires,
    auth::unauthenticated_requests_get_401_json,
    auth::absolute_timeout_ends_an_active_session,
    auth::login_is_throttled_per_account_and_source,
    auth::ending_sessions_revokes_them_refuses_their_tokens_and_tells_the_listeners,
    login_limits::concurrent_wrong_logins_are_bounded_by_the_password_pool,
    login_limits::concurrent_wrong_logins_for_one_account_stop_at_the_burst,
    login_limits::a_known_device_gets_in_while_the_account_is_attacked,
    login_limits::ipv6_addresses_in_one_prefix_are_one_source,
    login_limits::device_cookie_flags,
    appointments::create_list_get_cancel,
    appointments::list_defaults_to_today_and_validates_range,
    appointments::practitioner_sees_and_books_only_own,
    appointments::department_admin_is_limited_to_department,
    appointments::organisation_admin_sees_everything_in_organisation,
    appointments::other_organisation_is_not_found,
    appointments::completed_appointment_cannot_be_cancelled,
    appointments::clients_create_list_and_validate,
    appointments::department_waiting_room_needs_a_department,
    appointments::join_tokens_name_the_waiting_room,
    announcements::create_list_expire_and_delete,
    announcements::room_rules_by_role,
    announcements::other_organisation_cannot_see_or_touch,
    announcements::invalid_input_creates_nothing,
    announcements::active_feed_and_change_callback,
    invitations::window_boundaries_with_injected_clock,
    invitations::configurable_window,
    invitations::cancelled_unknown_and_tampered_tokens_are_refused,
    invitations::refusals_reveal_no_names,
    invitations::join_tokens_verify_and_reject,
    invitations::completed_consultation_closes_the_invitation,
    invitations::refreshed_join_tokens_follow_the_seat,
    ice::ice_servers_for_staff_and_join_token_holders,
    chat::chat_channel_rules,
    chat::chat_settings_close_the_patient_side,
    chat::continuous_chat_is_granted_and_stopped_by_admins,
    ice::ice_servers_without_turn_is_an_empty_list,
    misc::request_bodies_read_json_as_json_schema_does,
    misc::malformed_json_gets_json_400,
    misc::oversized_body_gets_413,
    misc::unknown_route_gets_json_404,
    misc::every_api_error_is_json,
    misc::openapi_lists_every_served_route,
    settings::settings_defaults_roles_and_validation,
    settings::join_tokens_carry_the_permissions,
    settings::department_waiting_room_texts,
    settings::the_after_consultation_text_reaches_the_patient,
    misc::demo_seed_is_idempotent_and_usable,
    misc::demo_organisation_is_separate_from_the_demo_clinic,
    misc::directory_lists_own_organisation_only,
    misc::security_headers_on_api_responses,
    logs::no_pii_in_logs,
    walkin::walkin_availability_switch_once_weekly_dst,
    walkin::walkin_widget_crud_roles,
    walkin::walkin_images_are_sniffed,
    walkin::walkin_public_endpoints_and_stream,
    walkin::walkin_intake_validation_and_visit_token,
    walkin::walkin_rate_limit_per_source,
    walkin::walkin_streams_are_capped_per_source,
    guests::guests_roles_resolve_and_revoke,
    guests::guest_name_is_validated,
    guests::guest_link_window_and_appointment_state,
    guests::guest_names_never_in_logs,
    external::external_participants_groups_and_invites,
    scheduling::client_register_rules,
    scheduling::segregation_narrows_the_register,
    scheduling::local_times_dst_past_and_message,
    scheduling::idempotency_reschedule_and_cancel,
    scheduling::roles_and_groups_at_booking,
    records::patients_follow_the_organisation_kind,
    records::services_catalogue_and_records,
    records::notes_are_edited_archived_and_filtered,
    records::the_timeline_types_orders_and_pages_every_item,
    records::records_follow_segregation,
    recalls::recall_rules_are_checked_and_managed_by_admins,
    recalls::the_rule_engine_follows_the_calendar_and_the_local_clock,
    recalls::a_service_done_early_late_or_entered_afterwards_moves_the_due_date,
    recalls::three_pets_get_one_mail_once_and_an_edited_rule_sends_nothing_again,
    recalls::no_wrong_message_each_suppression_is_recorded_with_its_reason,
    recalls::manual_recalls_views_and_segregation,
    recalls::a_recall_job_whose_worker_died_is_sent_once_by_the_next,
}

#[test]
fn migration_versions_match_between_backends() {
    let versions = |m: &sqlx::migrate::Migrator| {
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        versions(&consultroom_migrations::SQLITE),
        versions(&consultroom_migrations::POSTGRES)
    );
}

#[tokio::test]
async fn sqlite_without_wal_is_refused() {
    // An in-memory database cannot use WAL; start-up must fail rather than run without it.
    let err = consultroom_clinic::Store::connect("sqlite::memory:")
        .await
        .expect_err("in-memory sqlite must be refused");
    assert!(format!("{err:#}").contains("journal_mode"), "{err:#}");
}

#[tokio::test]
async fn sqlite_syncs_every_commit_by_default() {
    // RELIABILITY 44: `synchronous = FULL` (2) by default, so a `chat_ack` or a 201 means the
    // commit is on disk and survives power loss; `normal` (1) only when asked for.
    use consultroom_clinic::store::{SqliteDurability, Store};
    let dir = tempfile::tempdir().unwrap();
    for (durability, want) in [
        (None, 2_i64),
        (Some(SqliteDurability::Full), 2),
        (Some(SqliteDurability::Normal), 1),
    ] {
        let url = format!("sqlite://{}", dir.path().join("d.db").display());
        let store = match durability {
            None => Store::connect(&url).await.unwrap(),
            Some(d) => Store::connect_with(&url, d).await.unwrap(),
        };
        let Store::Sqlite(pool) = &store else {
            panic!("sqlite url gives a sqlite store")
        };
        let got: i64 = sqlx::query_scalar("pragma synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(got, want, "{durability:?}");
        store.close().await;
    }
}
