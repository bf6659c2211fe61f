from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate, password_validation

from accounts.models import User
from accounts.selectors import user_email_taken


class SignUpForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if user_email_taken(email=email):
            raise forms.ValidationError("An account with this email already exists. Sign in instead.")
        return email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "email" in cleaned and "password" in cleaned:
            candidate = User(email=cleaned["email"])
            try:
                password_validation.validate_password(cleaned["password"], candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class SignInForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, *args: Any, request: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "email" in cleaned and "password" in cleaned:
            user = authenticate(self.request, username=cleaned["email"], password=cleaned["password"])
            if user is None:
                raise forms.ValidationError("That email and password do not match an account.")
            self.user = user  # type: ignore[assignment]
        return cleaned
