"""Staff sign-in: passwords, limits, sessions."""
from conftest import csrf_token, sign_in


def test_owner_signs_in_and_reaches_the_inbox(client, owner):
    sign_in(client, owner)
    page = client.get("/")
    assert page.status_code == 200
    assert "Olga Owner" in page.get_data(as_text=True)


def test_wrong_password_is_refused_with_a_message(client, owner):
    token = csrf_token(client)
    response = client.post("/login", data={"email": owner.email, "password": "nope", "csrf_token": token})
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.get_data(as_text=True) or "Błędny" in response.get_data(as_text=True)
