"""Staff sign-in and sign-out, rate-limited per IP and per account."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired

from .. import sign_in_sessions
from ..extensions import db, limiter
from ..models import User, utcnow
from ..models.users import verify_password
from ..models.audit import record
from ..pages import safe_next

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    remember = BooleanField(_l("Remember me"))


def init_login(app: Flask, manager: LoginManager) -> None:
    manager.init_app(app)
    manager.login_view = "auth.login"
    manager.login_message = _l("Please sign in to continue.")
    manager.login_message_category = "info"
    manager.session_protection = "basic"
    manager.user_loader(_load_staff)


def _load_staff(session_id: str) -> User | None:
    """Flask-Login's loader: a staff account, never on the customer panel's pages (they have their own sign-in)."""
    if request.path.startswith("/p/"):
        return None
    user = User.load_from_session(session_id)
    if user is None or sign_in_sessions.find(user.session_token, user_id=user.id) is None:
        return None  # signed out (maybe on another device with a copy of the cookie), or an old cookie
    return user


def start_session(user: User, *, remember: bool, how: str = "password") -> None:
    """Sign `user` in to this browser with a new sign-in session (also behind the "remember me" cookie)."""
    user.session_token = sign_in_sessions.start(how=how, user_id=user.id)
    login_user(user, remember=remember)


def end_session() -> None:
    """Sign this browser out, ending its sign-in session on the server: copies of its cookies stop working."""
    sign_in_sessions.end(getattr(current_user, "session_token", None))
    logout_user()


def _account_key() -> str:
    return "login-account:" + request.form.get("email", "").strip().lower()


def _failed(response) -> bool:
    """Only failed attempts count towards the limits (a success redirects)."""
    return response.status_code != 302


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"], deduct_when=_failed,
               scope="login-ip")
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], methods=["POST"], deduct_when=_failed,
               key_func=_account_key, scope="login-account")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = User.by_email(form.email.data)
        # The password is checked (against a stand-in when there is no account) either way: the time taken must
        # not tell which addresses have accounts.
        password_ok = user.check_password(form.password.data) if user is not None else \
            verify_password(None, form.password.data)
        if user is not None and user.active and password_ok:
            start_session(user, remember=form.remember.data)
            user.last_login_at = utcnow()
            record("auth.login", by=user)
            db.session.commit()
            return redirect(safe_next(request.args.get("next")) or url_for("inbox.index"))
        record("auth.login_failed", by=form.email.data.strip().lower()[:254])
        db.session.commit()
        form.password.errors.append(_("Wrong e-mail or password."))
    status = 200 if request.method == "GET" else 401
    return render_template("staff/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    record("auth.logout", by=current_user)
    end_session()
    db.session.commit()
    flash(_("You have been signed out."), "info")
    return redirect(url_for("auth.login"))


def too_many_attempts(error):
    """429 on the sign-in page: the form again, with a clear message."""
    return render_template(
        "staff/login.html", form=LoginForm(), refusal=_("Too many sign-in attempts. Wait a minute and try again.")
    ), 429
