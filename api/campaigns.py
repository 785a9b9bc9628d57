"""Campaigns and their funnels, for managers (read only)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.base import ScopedViewSet, resource_schema
from api.serializers import SparseSerializer, UserBriefField
from campaigns.models import EmailCampaign
from campaigns.selectors import campaign_funnel
from crm.permissions.campaigns import require_campaign_manager, visible_campaigns


class FunnelStepSerializer(serializers.Serializer):
    label = serializers.CharField()
    count = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class CampaignSerializer(SparseSerializer):
    created_by = UserBriefField()
    funnel = serializers.SerializerMethodField()

    class Meta:
        model = EmailCampaign
        fields = [
            "id", "name", "campaign_type", "status", "subject", "segment", "template",
            "scheduled_send_time", "created_by", "created_at", "updated_at",
            "total_recipients", "funnel",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(FunnelStepSerializer(many=True))
    def get_funnel(self, campaign) -> list[dict]:
        return [
            {**step, "rate": None if step["rate"] is None else float(step["rate"])}
            for step in campaign_funnel(campaign=campaign)
        ]


@resource_schema()
class CampaignViewSet(ScopedViewSet):
    """Managers' campaigns (and their co-managers'), each with its funnel; reps: 403."""

    visible = visible_campaigns
    queryset = EmailCampaign.objects.select_related("created_by")
    serializer_class = CampaignSerializer
    filterset_fields = ["status", "campaign_type"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require_campaign_manager(request.user)
