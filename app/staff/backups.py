"""Settings → Backups (owners only): the last backups and where they go, "Back up now", and their download."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from ..backups import (BackupRefused, backup_under_lease, configured_dir, find_backup, keep_count, last_failure,
                       list_backups, secret_key_included)
from ..extensions import db
from ..models.audit import record
from . import owner_required

bp = Blueprint("backups", __name__, url_prefix="/settings/backups")


@bp.route("/")
@owner_required
def index():
    directory = configured_dir()
    return render_template("staff/settings/backups.html", directory=directory, keep=keep_count(),
                           backups=list_backups(directory), failure=last_failure(directory),
                           secret_key_included=secret_key_included(),
                           form=FlaskForm())


@bp.route("/", methods=["POST"])
@owner_required
def create():
    """Back up now into BACKUP_DIR, keeping the newest BACKUP_KEEP (the daily job's rule)."""
    form = FlaskForm()
    directory = configured_dir()
    if not form.validate_on_submit():
        abort(400)
    if directory is None:
        flash(_("Set BACKUP_DIR on the server to make backups here."), "error")
        return redirect(url_for("backups.index"))
    try:
        outcome = backup_under_lease(directory, keep=keep_count())
    except (BackupRefused, OSError) as exc:
        current_app.logger.exception("backup failed")
        flash(_("The backup failed: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("backups.index"))
    if outcome is None:
        flash(_("Another backup is being made right now; try again in a moment."), "error")
        return redirect(url_for("backups.index"))
    record("backup.create", by=current_user, file=outcome.path.name, size=outcome.path.stat().st_size)
    db.session.commit()
    flash(_("Backup %(name)s made.", name=outcome.path.name), "success")
    return redirect(url_for("backups.index"))


@bp.route("/<name>")
@owner_required
def download(name: str):
    """One backup file, streamed; only names the listing shows, so no path can reach elsewhere."""
    backup = find_backup(configured_dir(), name)
    if backup is None:
        abort(404)
    record("backup.download", by=current_user, file=backup.name)
    db.session.commit()
    response = send_file(backup.path, mimetype="application/gzip", as_attachment=True, download_name=backup.name,
                         conditional=False, etag=False, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
