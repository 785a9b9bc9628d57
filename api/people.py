"""Teams and users (read only), as far as the user's reach goes."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from api.base import ScopedViewSet, resource_schema
from api.serializers import SparseSerializer
from crm.models import Team
from crm.permissions.core import visible_teams_of, visible_users
from crm.roles import ADMIN_GROUP, MANAGER_GROUP, Role

User = get_user_model()


class TeamSerializer(SparseSerializer):
    managers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    members = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "managers", "members", "created_at"]
        read_only_fields = fields


class UserSerializer(SparseSerializer):
    name = serializers.SerializerMethodField()
    role = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "name", "email", "role", "is_active"]
        read_only_fields = fields

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username

    def get_role(self, user) -> str:
        # From the prefetched groups (role_of would ask the database for each user).
        names = {group.name for group in user.groups.all()}
        if user.is_superuser or ADMIN_GROUP in names:
            return str(Role.ADMIN)
        return str(Role.MANAGER if MANAGER_GROUP in names else Role.REP)


@resource_schema(updated_since=False)
class TeamViewSet(ScopedViewSet):
    """Your team (managers: the teams you manage; admins: all)."""

    visible = visible_teams_of
    queryset = Team.objects.prefetch_related("managers", "members")
    serializer_class = TeamSerializer
    ordering = ("name", "id")
    updated_field = "created_at"


@resource_schema(updated_since=False)
class UserViewSet(ScopedViewSet):
    """You and the people of your team (managers: of the teams you manage; admins: all)."""

    visible = visible_users
    queryset = User.objects.prefetch_related("groups")
    serializer_class = UserSerializer
    ordering = ("username", "id")
    updated_field = "date_joined"
