//! `consultroom`: one binary that runs the whole product. See `consultroom --help`.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use consultroom::App;
use consultroom::config::{AdminCommand, Cli, Command, LogFormat, ServeArgs};
use consultroom_clinic::{Clock, Store, SystemClock};

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,str0m=warn,tower_http=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

fn print_ready(app: &App) {
    // One machine-readable line on stdout; scripts and tests wait for it.
    println!(
        "consultroom ready http=http://{} admin=http://{} media={}",
        app.http_addr(),
        app.admin_addr(),
        app.media_addr()
    );
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = App::build(&args, Arc::new(SystemClock)).await?;
    if app.store.organisation_count().await? == 0 {
        // Nobody can log in yet: say how to start (the login screen says the same).
        tracing::warn!(
            "no organisation yet: run `consultroom admin create-organisation --name <name> \
             --admin-email <e-mail>` with the same --data-dir/--database-url and --public-url, \
             then open the set-password link it prints"
        );
    }
    print_ready(&app);
    app.run(shutdown_signal()).await
}

async fn demo(mut args: consultroom::config::DemoArgs) -> anyhow::Result<()> {
    // A demo on a machine with no network (only loopback) still runs: media is offered on
    // 127.0.0.1, for browsers on this machine.
    let media = consultroom_sfu::SfuConfig {
        bind: args.serve.media_bind,
        announce: args.serve.media_announce.clone(),
        loops: 1,
        tcp_bind: None,
    };
    if !media.has_announce_address() {
        args.serve.media_announce = vec![std::net::IpAddr::from([127, 0, 0, 1])];
        eprintln!(
            "  No network address found: the demo offers media on 127.0.0.1, so only browsers on \
             this machine can join (--media-announce <IP> for others)."
        );
    }
    let app = App::build(&args.serve, Arc::new(SystemClock)).await?;
    let password = args.demo_password.clone().unwrap_or_else(random_password);
    let public_url = args
        .serve
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", app.http_addr()));
    let info =
        consultroom_clinic::demo::seed(&app.store, SystemClock.now(), &password, &public_url)
            .await
            .context("seeding the demo clinic")?;
    println!("demo practitioner_email={}", info.email);
    println!("demo practitioner_password={}", info.password);
    println!("demo invitation_url={}", info.invitation_url);
    eprintln!(
        "\n  Consultroom demo is running.\n\n  Practitioner: open {public_url}/ and log in as {} / {}\n  Patient:      open {} (in another browser or a private window)\n  E-mail:       {}\n\n  Press Ctrl-C to stop.\n",
        info.email,
        info.password,
        info.invitation_url,
        if args.serve.smtp_url.is_some() {
            "sent through --smtp-url; every mail is also listed under \"Sent mail\" (admin login)"
                .to_owned()
        } else {
            format!(
                "no mail server configured: mails stay in the outbox; see them under \"Sent mail\" in the staff app: log in as {} with the same password",
                consultroom_clinic::demo::ADMIN_EMAIL
            )
        }
    );
    print_ready(&app);
    app.run(shutdown_signal()).await
}

/// Seeds one more demo-shaped organisation into the database of `args.serve` and prints it.
async fn demo_organisation(args: consultroom::config::DemoOrganisationArgs) -> anyhow::Result<()> {
    let demo = consultroom_clinic::demo::DemoOrganisation::named(&args.name).context(
        "--name must have 1 to 100 characters, with at least one letter or digit (a-z, 0-9)",
    )?;
    let public_url =
        args.serve.public_url.clone().context(
            "--public-url is needed: the running server's address, for the invitation link",
        )?;
    let password = args.demo_password.clone().unwrap_or_else(random_password);
    let url = args.serve.database_url();
    // An existing database only: a mistyped path must not create an empty one.
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        anyhow::ensure!(
            std::path::Path::new(path).exists(),
            "no database at {path} (start the server or run `consultroom migrate` first)"
        );
    }
    let store = Store::connect_with(&url, args.serve.sqlite_synchronous.into()).await?;
    let info = consultroom_clinic::demo::seed_organisation(
        &store,
        &demo,
        SystemClock.now(),
        &password,
        &public_url,
    )
    .await
    .context("seeding the organisation (is the database migrated?)")?;
    store.close().await;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "organisation": info.organisation,
                "department": info.department,
                "practitioner_email": info.email,
                "practitioner_name": info.practitioner_name,
                "admin_email": info.admin_email,
                "password": info.password,
                "invitation_url": info.invitation_url,
            })
        );
    } else {
        println!("demo organisation={}", info.organisation);
        println!("demo practitioner_email={}", info.email);
        println!("demo admin_email={}", info.admin_email);
        println!("demo practitioner_password={}", info.password);
        println!("demo invitation_url={}", info.invitation_url);
    }
    Ok(())
}

fn random_password() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The database of `serve`, migrated (the admin commands may run before the first `serve`).
async fn admin_store(args: &ServeArgs) -> anyhow::Result<Store> {
    consultroom::datadir::prepare(&args.data_dir)?;
    consultroom::datadir::prepare_sqlite(&args.database_url())?;
    let store = Store::connect_with(&args.database_url(), args.sqlite_synchronous.into()).await?;
    store.migrate().await?;
    consultroom::datadir::tighten_sqlite(&args.database_url())?;
    Ok(store)
}

fn public_url_of(args: &ServeArgs) -> String {
    args.public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.http))
        .trim_end_matches('/')
        .to_owned()
}

fn print_link(what: &str, link: &consultroom_clinic::password_links::IssuedLink) {
    println!("{what}");
    println!("set_password_url={}", link.url);
    println!(
        "expires_at={}",
        link.expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    match &link.mail {
        Some(mail) => {
            println!("mail_id={}", mail.id);
            eprintln!(
                "\n  Open the link above to set the password (it works once, until {}).\n  \
                 The link was also queued as an e-mail to {} in the server's database: the \
                 running `consultroom serve` sends it at its next poll (within seconds) through \
                 its --smtp-url; without a mail server it stays in the outbox (\"Sent mail\" in \
                 the staff app).\n",
                link.expires_at.format("%Y-%m-%d %H:%M UTC"),
                mail.to
            );
        }
        None => eprintln!(
            "\n  Open the link above to set the password (it works once, until {}).\n  \
             No e-mail was queued: no e-mail can be sent to this staff member's address; hand \
             the link over yourself.\n",
            link.expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
    }
}

async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    use consultroom_clinic::setup;
    let now = SystemClock.now();
    match command {
        AdminCommand::CreateOrganisation(a) => {
            let store = admin_store(&a.serve).await?;
            let created = setup::create_organisation(
                &store,
                now,
                &public_url_of(&a.serve),
                &a.name,
                &a.admin_email,
                a.admin_name.as_deref(),
            )
            .await;
            store.close().await;
            let created = created?;
            print_link(
                &format!("organisation={}", created.organisation_id),
                &created.link,
            );
        }
        AdminCommand::InviteStaff(a) => {
            let store = admin_store(&a.serve).await?;
            let link = setup::invite_staff(
                &store,
                now,
                &public_url_of(&a.serve),
                &a.organisation,
                &a.email,
                a.name.as_deref(),
                &a.role,
                a.department.as_deref(),
            )
            .await;
            store.close().await;
            let link = link?;
            print_link(&format!("staff={}", link.staff_id), &link);
        }
        AdminCommand::ResetPassword(a) => {
            let store = admin_store(&a.serve).await?;
            let link = setup::reset_password(&store, now, &public_url_of(&a.serve), &a.email).await;
            store.close().await;
            let link = link?;
            print_link(&format!("staff={}", link.staff_id), &link);
        }
    }
    Ok(())
}

async fn migrate(args: ServeArgs) -> anyhow::Result<()> {
    consultroom::datadir::prepare(&args.data_dir)?;
    consultroom::datadir::prepare_sqlite(&args.database_url())?;
    let store = Store::connect_with(&args.database_url(), args.sqlite_synchronous.into()).await?;
    store.migrate().await?;
    consultroom::datadir::tighten_sqlite(&args.database_url())?;
    eprintln!("migrations applied");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    consultroom::init_crypto();
    let cli = Cli::parse();
    let format = match &cli.command {
        Some(Command::Serve(a) | Command::Migrate(a)) => a.log_format,
        Some(Command::Demo(d)) => d.serve.log_format,
        Some(Command::DemoOrganisation(d)) => d.serve.log_format,
        Some(Command::Admin(
            AdminCommand::CreateOrganisation(consultroom::config::CreateOrganisationArgs {
                serve,
                ..
            })
            | AdminCommand::InviteStaff(consultroom::config::InviteStaffArgs { serve, .. })
            | AdminCommand::ResetPassword(consultroom::config::ResetPasswordArgs { serve, .. }),
        )) => serve.log_format,
        None => cli.serve.log_format,
    };
    init_tracing(format);
    // Every connection is a file descriptor; the usual soft limit of 1,024 is too few for a
    // server (the connection cap is derived from what this leaves, see serve::fdlimit).
    match consultroom::serve::fdlimit::raise() {
        Some(limit) => tracing::info!(limit, "open-file limit"),
        None => tracing::warn!("the open-file limit could not be read"),
    }
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(a)) => serve(a).await,
        Some(Command::Migrate(a)) => migrate(a).await,
        Some(Command::Demo(d)) => demo(d).await,
        Some(Command::DemoOrganisation(d)) => demo_organisation(d).await,
        Some(Command::Admin(c)) => admin(c).await,
    }
}
